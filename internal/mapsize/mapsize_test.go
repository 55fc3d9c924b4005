package mapsize

import "testing"

func TestRebuiltAfterABurstDrains(t *testing.T) {
	m, peak := map[int]int{}, 0
	for i := range 3000 {
		m[i] = i
		Grew(m, &peak)
	}
	if peak != 3000 {
		t.Fatalf("peak %d", peak)
	}
	for i := range 2600 {
		delete(m, i)
		m = Rebuilt(m, &peak)
	}
	if peak != 3000 {
		t.Fatalf("rebuilt at %d entries, above an eighth of the peak", len(m))
	}
	for i := 2600; i < 2625; i++ { // down to 375, an eighth of 3000
		delete(m, i)
		m = Rebuilt(m, &peak)
	}
	if peak != 375 || len(m) != 375 || m[2999] != 2999 {
		t.Fatalf("after draining: peak %d, %d entries", peak, len(m))
	}
	small, p := map[int]int{1: 1}, 0
	Grew(small, &p)
	delete(small, 1)
	if Rebuilt(small, &p); p != 1 {
		t.Fatalf("a small map was rebuilt (peak %d)", p)
	}
}
