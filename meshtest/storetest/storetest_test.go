package storetest_test

import (
	"testing"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/meshtest/storetest"
)

func TestMemoryStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T, limit continuity.Retention) continuity.Store {
		return continuity.NewMemoryStore(limit)
	})
}
