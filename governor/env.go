package governor

import (
	"fmt"
	"strings"
)

// Environment variables of the governor (PROTOCOL.md section 8).
const (
	EnvEnabled    = "TB_GOVERNOR_ENABLED"
	EnvShadowOnly = "TB_GOVERNOR_SHADOW_ONLY"
)

// Mode is how the governor runs: enabled or not, and shadow (intents and
// hashes flow, runtime params are not mutated) or apply.
type Mode struct {
	Enabled    bool `json:"enabled"`
	ShadowOnly bool `json:"shadow_only"`
	// Set lists the variables that were set (non-empty), for reports.
	Set []string `json:"set,omitempty"`
}

// String is "disabled", "shadow" or "apply".
func (m Mode) String() string {
	switch {
	case !m.Enabled:
		return "disabled"
	case m.ShadowOnly:
		return "shadow"
	}
	return "apply"
}

// EnvError is an environment variable with a value the rules do not know.
type EnvError struct {
	Var   string
	Value string
	Want  string
}

func (e *EnvError) Error() string {
	return fmt.Sprintf("%s=%q: want %s", e.Var, e.Value, e.Want)
}

// ModeFromEnv reads the mode with getenv (os.Getenv in a program, a map in
// tests). Rules: values are trimmed and compared case-insensitively; unset or
// empty means the default.
//   - TB_GOVERNOR_ENABLED: "1" or "true" turn the governor on, "0" or "false"
//     (or unset) leave it off; anything else is an error naming the variable.
//   - TB_GOVERNOR_SHADOW_ONLY: shadow is the default; only "0" or "false"
//     select apply; "1" or "true" (or unset) keep shadow; anything else is an
//     error naming the variable — an unknown value never silently selects apply.
func ModeFromEnv(getenv func(string) string) (Mode, error) {
	m := Mode{ShadowOnly: true}
	if getenv == nil {
		return m, nil
	}
	switch v := norm(getenv(EnvEnabled)); v {
	case "":
	case "1", "true":
		m.Enabled = true
		m.Set = append(m.Set, EnvEnabled)
	case "0", "false":
		m.Set = append(m.Set, EnvEnabled)
	default:
		return Mode{}, &EnvError{Var: EnvEnabled, Value: getenv(EnvEnabled), Want: `1/true (on) or 0/false (off; the default)`}
	}
	switch v := norm(getenv(EnvShadowOnly)); v {
	case "":
	case "1", "true":
		m.Set = append(m.Set, EnvShadowOnly)
	case "0", "false":
		m.ShadowOnly = false
		m.Set = append(m.Set, EnvShadowOnly)
	default:
		return Mode{}, &EnvError{Var: EnvShadowOnly, Value: getenv(EnvShadowOnly), Want: `1/true (shadow; the default) or 0/false (apply)`}
	}
	return m, nil
}

func norm(s string) string { return strings.ToLower(strings.TrimSpace(s)) }
