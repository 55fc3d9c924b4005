package work

import "testing"

func TestAdd(t *testing.T) {
	got, err := Add(t.Context())
	if err != nil {
		t.Fatalf("Add: %v", err)
	}
	if got != 2 {
		t.Fatalf("Add = %d, want 2", got)
	}
}
