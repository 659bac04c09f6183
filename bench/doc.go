// Package bench holds benchmarks that compare tbops with peer libraries side by
// side. It is its own module so that peers used only for comparison never become
// dependencies of tbops. Run: cd bench && go test -run '^$' -bench . -benchmem
//
// Whole-program measurements live beside it: fleetsim serves a fleet of
// simulated nodes in a process of its own, and fleet/doctor.sh and
// fleet/serve.sh time tbops doctor and tbops serve against it (BENCHMARKS.md).
package bench
