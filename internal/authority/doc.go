// Package authority owns a node's authority: its role, its promotion epoch,
// its fence generation, its quarantine after a pause and the promotion
// decision, as one pure state machine (Machine), plus the part that must
// survive a restart (State, saved in authority.json and merged with the
// configuration at boot so that a restarted node never comes back below an
// epoch it has already reached).
//
// The engine drives the Machine: it turns what it observes (a peer's
// authority, a gap of its pause detector, a ping answered, a snapshot
// applied, a lost primary) into events, carries out the effects (persist,
// wake waiters, ping, promote, recover) and owns the lock, the clock and the
// randomness. The Machine owns none of them, so every rule is tested as a
// table of events without goroutines.
//
// # Arbiter
//
// Whether a standby may become primary after losing its peer is asked of an
// Arbiter: Grant answers with the epoch to promote at, or a *Refusal. The
// default, Peer, is the two-node rule: yes only when no peer is connected,
// the lost primary did not answer a probe and the node is not quarantined;
// it grants the next epoch. It is fast but not partition-safe: both sides of
// a cut may promote, and the higher epoch fences the other at the heal.
//
// Arbiter is narrower than the lease-shaped internal/arbiter.Arbiter on
// purpose, and a lease backend implements it through an adapter rather than
// the peer rule pretending to be a lease. The promotion question is the one
// thing both answer: "may this node be primary, and at which epoch". The
// rest of the lease seam (Renew, Release, Observe, a Deadline after which
// the holder must stop) describes a store the peer rule does not have; a peer
// "lease" would have to renew forever and never expire, and status would
// then report a lease that guarantees nothing. A lease adapter answers Grant
// with Acquire (refusing with lease_held_by:<node>) and keeps its lease
// beside the Machine; the Machine stays the only place where role and epoch
// change.
//
// The package touches only the local file system (State) and imports only
// the standard library.
package authority
