// Package bench holds benchmarks that compare tbops with peer libraries side by
// side. It is its own module so that peers used only for comparison never become
// dependencies of tbops. Run: cd bench && go test -run '^$' -bench . -benchmem
package bench
