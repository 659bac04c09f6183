package nodetest

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"time"
)

// Scenario is everything a simulated node serves: chain state, each area's state,
// explicit metric series and injected faults. Times in it are Unix seconds.
type Scenario struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Now is the instant the scenario's times were written for. LoadScenario
	// shifts every time by (load time − Now), so a file written for one day still
	// says "three days ago" on another. Zero means "already current".
	Now int64 `json:"now,omitempty"`
	// Base names a built-in scenario a JSON file starts from: the file then
	// states only what differs.
	Base string `json:"base,omitempty"`

	Chain    ChainState    `json:"chain"`
	Treasury TreasuryState `json:"treasury"`
	Energy   EnergyState   `json:"energy"`
	Receipts ReceiptsState `json:"receipts"`
	Governor GovernorState `json:"governor"`
	Runtime  RuntimeState  `json:"runtime"`

	// Metrics are explicit series. A metric named here replaces the one the node
	// would derive from its state; one with no series hides it (as on a node that
	// does not export it).
	Metrics []Metric `json:"metrics,omitempty"`
	Faults  []Fault  `json:"faults,omitempty"`
}

// shift moves every time in the scenario by d seconds.
func (s *Scenario) shift(d int64) {
	s.Chain.shift(d)
	s.Treasury.shift(d)
	s.Energy.shift(d)
	s.Receipts.shift(d)
	s.Governor.shift(d)
	s.Runtime.shift(d)
}

// Healthy is the default scenario: every area healthy at the instant now.
func Healthy(now time.Time) Scenario {
	return Scenario{
		Name:        "healthy",
		Description: "a healthy node: every runbook reports ok",
		Chain:       healthyChain(now),
		Treasury:    healthyTreasury(now),
		Energy:      healthyEnergy(now),
		Receipts:    healthyReceipts(now),
		Governor:    healthyGovernor(now),
		Runtime:     healthyRuntime(now),
	}
}

// builtins are the named Go scenarios: each area contributes its own.
func builtins() map[string]func(now time.Time) Scenario {
	out := map[string]func(time.Time) Scenario{"healthy": Healthy}
	for _, m := range []map[string]func(time.Time) Scenario{chainScenarios(), treasuryScenarios(),
		energyScenarios(), receiptsScenarios(), governorScenarios(), runtimeScenarios()} {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

//go:embed scenarios/*.json
var embedded embed.FS

// Scenarios lists the names of the built-in and embedded scenarios, sorted.
func Scenarios() []string {
	names := []string{}
	for k := range builtins() {
		names = append(names, k)
	}
	entries, _ := fs.ReadDir(embedded, "scenarios")
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".json"))
	}
	sort.Strings(names)
	return names
}

// LookupScenario returns the scenario called name at the instant now: a built-in
// Go scenario, an embedded JSON one, or else a JSON file at the path name.
func LookupScenario(name string, now time.Time) (Scenario, error) {
	if f, ok := builtins()[name]; ok {
		return f(now), nil
	}
	if raw, err := embedded.ReadFile("scenarios/" + name + ".json"); err == nil {
		return ParseScenario(raw, name, now)
	}
	raw, err := os.ReadFile(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Scenario{}, fmt.Errorf("nodetest: no scenario %q (known: %s; or give a JSON file path)",
				name, strings.Join(Scenarios(), ", "))
		}
		return Scenario{}, fmt.Errorf("nodetest: scenario file %s: %w", name, err)
	}
	return ParseScenario(raw, name, now)
}

// ParseScenario decodes a JSON scenario strictly (unknown fields are errors, named
// with the file) and shifts its times to now.
func ParseScenario(raw []byte, file string, now time.Time) (Scenario, error) {
	var head struct {
		Now  int64  `json:"now"`
		Base string `json:"base"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return Scenario{}, fmt.Errorf("nodetest: scenario %s: %w", file, err)
	}
	var s Scenario
	if head.Base != "" {
		base, ok := builtins()[head.Base]
		if !ok {
			return Scenario{}, fmt.Errorf("nodetest: scenario %s: unknown base %q", file, head.Base)
		}
		written := now
		if head.Now != 0 {
			written = time.Unix(head.Now, 0)
		}
		s = base(written) // the file's own times are relative to when it was written
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Scenario{}, fmt.Errorf("nodetest: scenario %s: %w", file, err)
	}
	if s.Now != 0 {
		s.shift(now.Unix() - s.Now)
		s.Now = now.Unix()
	}
	return s, nil
}

// MarshalScenario writes s as JSON stamped with now, so that loading it later
// shifts its times to the load instant.
func MarshalScenario(s Scenario, now time.Time) ([]byte, error) {
	s.Now = now.Unix()
	return json.MarshalIndent(s, "", "  ")
}
