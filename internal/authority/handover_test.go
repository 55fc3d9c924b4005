package authority

import (
	"reflect"
	"testing"
)

// A planned hand-over: the primary that hands over to b steps down at b's
// epoch without raising its fence generation, whether b's authority or
// b's answer arrives first; anything else still fences it.
func TestMachineHandOver(t *testing.T) {
	primary := NewMachine("a", st(RolePrimary, 3))
	handing, eff := primary.Step(HandOver{To: "b"})
	if eff.Err != nil || handing.HandingOver() != "b" {
		t.Fatalf("HandOver: %+v, handing over to %q", eff, handing.HandingOver())
	}
	stepped := st(RoleStandby, 4)
	wantDown := Effects{Persist: &stepped, SteppedDown: &Change{Prev: st(RolePrimary, 3), Next: stepped, Peer: "b", Reason: ReasonSwitchover}}

	for name, ev := range map[string]Event{
		"answer first":    StepDown{To: "b", Epoch: 4},
		"authority first": Observed{Peer: "b", Role: RolePrimary, Epoch: 4},
	} {
		m, eff := handing.Step(ev)
		if !reflect.DeepEqual(eff, wantDown) || m.State() != stepped || m.FenceGen() != 0 || m.HandingOver() != "" {
			t.Errorf("%s: state %+v gen %d handing %q, effects %+v", name, m.State(), m.FenceGen(), m.HandingOver(), eff)
		}
		// The second of the two changes nothing.
		again, eff := m.Step(Observed{Peer: "b", Role: RolePrimary, Epoch: 4})
		if eff != (Effects{}) || again.State() != stepped {
			t.Errorf("%s: then b's authority: %+v", name, eff)
		}
		if _, eff := m.Step(StepDown{To: "b", Epoch: 4}); eff.Err == nil {
			t.Errorf("%s: a second StepDown was accepted", name)
		}
	}

	// A third node's higher epoch, or b as standby, still fences.
	for name, ev := range map[string]Event{
		"other node":    Observed{Peer: "c", Role: RolePrimary, Epoch: 4},
		"b not primary": Observed{Peer: "b", Role: RoleStandby, Epoch: 4},
	} {
		m, eff := handing.Step(ev)
		if eff.Fenced == nil || m.FenceGen() != 1 || m.HandingOver() != "" {
			t.Errorf("%s: %+v, gen %d", name, eff, m.FenceGen())
		}
	}
	// Without a hand-over b's higher epoch fences, as always.
	if m, eff := primary.Step(Observed{Peer: "b", Role: RolePrimary, Epoch: 4}); eff.Fenced == nil || m.FenceGen() != 1 {
		t.Errorf("no hand-over: %+v", eff)
	}
	// Aborted: b's higher epoch fences again; StepDown is refused.
	ended, _ := handing.Step(EndHandOver{})
	if _, eff := ended.Step(StepDown{To: "b", Epoch: 4}); eff.Err == nil {
		t.Error("StepDown accepted after EndHandOver")
	}
	if m, eff := ended.Step(Observed{Peer: "b", Role: RolePrimary, Epoch: 4}); eff.Fenced == nil || m.FenceGen() != 1 {
		t.Errorf("after EndHandOver: %+v", eff)
	}
	// Refused starts and bad steps.
	for name, c := range map[string]struct {
		m  Machine
		ev Event
	}{
		"hand over from a standby": {NewMachine("a", st(RoleStandby, 3)), HandOver{To: "b"}},
		"hand over to self":        {primary, HandOver{To: "a"}},
		"hand over quarantined":    {quarantined(t, primary, 0), HandOver{To: "b"}},
		"step down to another":     {handing, StepDown{To: "c", Epoch: 4}},
		"step down not above":      {handing, StepDown{To: "b", Epoch: 3}},
		"take over as primary":     {primary, TakeOver{From: "b", Epoch: 4}},
		"take over not above":      {NewMachine("b", st(RoleStandby, 3)), TakeOver{From: "a", Epoch: 3}},
		"take over quarantined":    {quarantined(t, NewMachine("b", st(RoleStandby, 3)), 0), TakeOver{From: "a", Epoch: 4}},
	} {
		m, eff := c.m.Step(c.ev)
		if eff.Err == nil || m.State() != c.m.State() || eff.Persist != nil {
			t.Errorf("%s: accepted: %+v", name, eff)
		}
	}

	// The standby's side: TakeOver promotes without a fencing.
	standby := NewMachine("b", st(RoleStandby, 3))
	m, eff := standby.Step(TakeOver{From: "a", Epoch: 4})
	next := st(RolePrimary, 4)
	if want := (Effects{Persist: &next, Promoted: &Change{Prev: st(RoleStandby, 3), Next: next, Peer: "a", Reason: ReasonSwitchover}}); !reflect.DeepEqual(eff, want) ||
		m.State() != next || m.FenceGen() != 0 {
		t.Errorf("TakeOver: %+v", eff)
	}
}
