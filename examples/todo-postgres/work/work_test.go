package work

import "testing"

func TestSyncTodos(t *testing.T) {
	got, err := SyncTodos(t.Context())
	if err != nil || got != 2 {
		t.Fatalf("SyncTodos() = %d, %v; want 2, nil", got, err)
	}
}
