module github.com/theblock/tbops/bench

go 1.26.0

replace github.com/theblock/tbops => ../

require (
	github.com/prometheus/client_golang v1.25.0 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
	github.com/theblock/tbops v0.0.0-00010101000000-000000000000 // indirect
	golang.org/x/time v0.16.0 // indirect
)
