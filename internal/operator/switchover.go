package operator

import (
	"fmt"
	"io"
	"strconv"
	"time"
)

// Switcher is a Source that can hand the primary role over (a planned
// switchover). Unlike the other Source methods, Switchover blocks on the
// network until the hand-over is done or refused.
type Switcher interface {
	// Switchover hands the primary role to the standby to (any connected
	// standby when empty). A refusal's error message is the reason the
	// operator sees, switchover_rejected:<reason>.
	Switchover(to string) (SwitchoverView, error)
}

// SwitchoverView is the raw material of a Switchover reply.
type SwitchoverView struct {
	From, To      string
	SafetyMode    string
	PreviousEpoch uint64
	Epoch         uint64
	Duration      time.Duration
	Steps         []SwitchoverStepView
}

// SwitchoverStepView is one step of a switchover and when it ended.
type SwitchoverStepView struct {
	Step    string
	Elapsed time.Duration
	Detail  string
}

// Switchover is the JSON document of a completed switchover: who handed
// the role to whom, the epochs, and its progress step by step.
type Switchover struct {
	DurationMS    int64            `json:"duration_ms"`
	Epoch         uint64           `json:"epoch"`
	From          string           `json:"from"`
	PreviousEpoch uint64           `json:"previous_epoch"`
	SafetyMode    string           `json:"safety_mode"`
	Steps         []SwitchoverStep `json:"steps"`
	Target        string           `json:"target"`
	To            string           `json:"to"`
}

// SwitchoverStep is one entry of Switchover.Steps.
type SwitchoverStep struct {
	Detail    string `json:"detail"`
	ElapsedMS int64  `json:"elapsed_ms"`
	Step      string `json:"step"`
}

func newSwitchover(v SwitchoverView) Switchover {
	out := Switchover{From: v.From, To: v.To, SafetyMode: v.SafetyMode, PreviousEpoch: v.PreviousEpoch, Epoch: v.Epoch,
		DurationMS: v.Duration.Milliseconds(), Steps: []SwitchoverStep{}}
	for _, s := range v.Steps {
		out.Steps = append(out.Steps, SwitchoverStep{Step: s.Step, ElapsedMS: s.Elapsed.Milliseconds(), Detail: s.Detail})
	}
	return out
}

// SetTarget sets s.Target.
func (s *Switchover) SetTarget(target string) { s.Target = target }

// DecodeSwitchover decodes and validates a switchover document.
func DecodeSwitchover(body []byte) (Switchover, error) {
	var s Switchover
	err := decodeObject(body, "switchover", &s, func(o object) error {
		if err := o.require("target", "from", "to", "safety_mode", "previous_epoch", "epoch", "duration_ms", "steps"); err != nil {
			return err
		}
		return o.each("steps", func(o object) error { return o.require("step", "elapsed_ms", "detail") })
	})
	if err != nil {
		return Switchover{}, err
	}
	switch {
	case s.From == "" || s.To == "":
		return Switchover{}, fmt.Errorf("switchover: from and to must not be empty")
	case s.Epoch <= s.PreviousEpoch:
		return Switchover{}, fmt.Errorf("switchover: epoch %d is not above previous_epoch %d", s.Epoch, s.PreviousEpoch)
	case !validSafetyMode(s.SafetyMode):
		return Switchover{}, invalidValue("switchover", "safety_mode", s.SafetyMode)
	}
	return s, nil
}

// WriteText writes the switchover as aligned key: value lines, then one
// "- step=... elapsed_ms=... detail=..." line per step.
func (s *Switchover) WriteText(w io.Writer) error {
	var t text
	t.kv("target", s.Target)
	t.kv("from", s.From)
	t.kv("to", s.To)
	t.kv("safety_mode", s.SafetyMode)
	t.kv("previous_epoch", strconv.FormatUint(s.PreviousEpoch, 10))
	t.kv("epoch", strconv.FormatUint(s.Epoch, 10))
	t.kv("duration_ms", strconv.FormatInt(s.DurationMS, 10))
	t.heading("steps")
	for _, st := range s.Steps {
		t.item("step", st.Step, "elapsed_ms", strconv.FormatInt(st.ElapsedMS, 10), "detail", st.Detail)
	}
	return t.writeTo(w)
}
