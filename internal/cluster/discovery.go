package cluster

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// discoveryLoop resolves the seed every interval (and at once when a peer is
// lost) and dials every resolved address at the cluster port that is neither
// this node nor an already connected peer. A tick is logged at info level
// when its outcome differs from the previous tick's, at debug level when
// nothing changed, so a settled pair does not log every interval.
func (n *Node) discoveryLoop() {
	t := time.NewTicker(n.cfg.DiscoveryInterval)
	defer t.Stop()
	last := n.discoverOnce("", n.endFirstLook)
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		case <-n.kick:
		}
		last = n.discoverOnce(last, nil)
	}
}

// endFirstLook ends the wait of submissions for the first discovery tick
// (awaitFirstLook): its dials have all ended, each linked to its peer or
// failed.
func (n *Node) endFirstLook() {
	n.looking.Store(false)
	close(n.firstLook)
}

// awaitFirstLook holds a submission made before the node's first look for
// its peers has ended, at most the peer timeout or until ctx ends. A peer
// found then is registered before the look ends, so the submission then
// waits for its snapshot (awaitPeerSync); a peer that cannot be reached
// costs the submission the time its dial takes to fail.
func (n *Node) awaitFirstLook(ctx context.Context) {
	limit := time.NewTimer(n.cfg.PeerTimeout)
	defer limit.Stop()
	select {
	case <-n.firstLook:
	case <-ctx.Done():
	case <-n.ctx.Done():
	case <-limit.C:
	}
}

func (n *Node) lookup(ctx context.Context, host string) ([]string, error) {
	if ip := net.ParseIP(strings.Trim(host, "[]")); ip != nil {
		return []string{ip.String()}, nil
	}
	if n.lookupHost != nil {
		return n.lookupHost(ctx, host)
	}
	return net.DefaultResolver.LookupHost(ctx, host)
}

// resolveAddrs resolves host to host:port strings with canonical IPs.
func (n *Node) resolveAddrs(ctx context.Context, host string, port int) ([]string, error) {
	ips, err := n.lookup(ctx, host)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		if p := net.ParseIP(ip); p != nil {
			ip = p.String()
		}
		out = append(out, net.JoinHostPort(ip, strconv.Itoa(port)))
	}
	return out, nil
}

// discoverOnce runs one discovery tick and returns its outcome as logged;
// last is the previous tick's. ended, when not nil, is called once every
// dial the tick starts has ended (at once when it starts none).
func (n *Node) discoverOnce(last string, ended func()) string {
	ctx, cancel := context.WithTimeout(n.ctx, 2*time.Second)
	defer cancel()
	seed, port := n.cfg.DiscoverySeed, n.cfg.ClusterPort
	candidates, err := n.resolveAddrs(ctx, seed, port)
	lastErr := "none"
	if err != nil {
		lastErr = "seed=" + seed + " resolve_failed=" + err.Error()
	}
	// Peers this node knew before are dialed too: the seed may not resolve
	// to every peer's address from every node (localhost is often IPv4 only).
	for _, peer := range n.known() {
		if nn, err := ParseNodeName(peer); err == nil {
			if addrs, err := n.resolveAddrs(ctx, nn.Host, nn.Port); err == nil {
				candidates = append(candidates, addrs...)
			}
		}
	}
	self := map[string]bool{}
	if addrs, err := n.resolveAddrs(ctx, n.cfg.NodeName.Host, n.cfg.NodeName.Port); err == nil {
		for _, a := range addrs {
			self[a] = true
		}
	}
	connected := map[string]bool{}
	for _, peer := range n.Peers() {
		if nn, err := ParseNodeName(peer); err == nil {
			if addrs, err := n.resolveAddrs(ctx, nn.Host, nn.Port); err == nil {
				for _, a := range addrs {
					connected[a] = true
				}
			}
		}
	}
	seen := map[string]bool{}
	var accepted, rejected []string
	for _, c := range candidates {
		switch {
		case seen[c]:
			rejected = append(rejected, c+":duplicate")
			continue
		case self[c]:
			rejected = append(rejected, c+":self")
		case connected[c]:
			rejected = append(rejected, c+":already_connected")
		default:
			accepted = append(accepted, c)
		}
		seen[c] = true
	}
	sort.Strings(accepted)
	attrs := []any{"provider", "dns", "seed", seed, "cluster_port", port,
		"resolved", len(candidates), "accepted", len(accepted), "accepted_targets", joinOrNone(accepted),
		"rejected_targets", joinOrNone(rejected), "last_error", lastErr}
	outcome := fmt.Sprint(attrs...)
	if outcome != last || len(accepted) > 0 {
		n.log.Info("[mesh-rt discovery]", attrs...)
	} else {
		n.log.Debug("[mesh-rt discovery]", attrs...)
	}
	var dials sync.WaitGroup
	for _, addr := range accepted {
		dials.Add(1)
		n.goRun(func() {
			defer dials.Done()
			if _, err := n.dial(n.ctx, addr, n.cfg.PeerTimeout); err != nil && n.ctx.Err() == nil {
				n.log.Debug("[mesh-rt discovery] dial failed", "target", addr, "seed", seed, "error", err.Error())
			}
		})
	}
	if ended != nil {
		// A dial goRun did not start (the node is stopping) never ends;
		// awaitFirstLook also ends with the node.
		n.goRun(func() {
			dials.Wait()
			ended()
		})
	}
	return outcome
}

func joinOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ",")
}
