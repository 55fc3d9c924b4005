package cluster

import (
	"testing"

	"meshgo.dev/mesh/internal/wire"
)

// A stored response the runtime keeps must decode on the peer: the wire
// refuses stored responses over wire.MaxStoredResponse before allocating.
func TestStoredResponseLimitFitsTheWire(t *testing.T) {
	if maxReplayStoredBytes > wire.MaxStoredResponse {
		t.Fatalf("the runtime stores responses up to %d bytes but the wire accepts only %d", maxReplayStoredBytes, wire.MaxStoredResponse)
	}
}
