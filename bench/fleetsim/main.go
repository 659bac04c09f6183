// Command fleetsim serves a fleet of simulated nodes (nodetest, real HTTP on
// loopback) in one process, writes their RPC URLs to a --nodes file for
// `tbops doctor --nodes FILE`, and serves until interrupted. It runs apart from
// the doctor it measures so that each process's CPU is its own.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/theblock/tbops/nodetest"
)

func main() {
	n := flag.Int("n", 200, "number of simulated nodes")
	out := flag.String("nodes", "nodes.txt", "file to write the nodes' RPC URLs to, one a line")
	scenario := flag.String("scenario", "healthy", "scenario every node runs")
	flag.Parse()
	if err := run(*n, *out, *scenario); err != nil {
		fmt.Fprintln(os.Stderr, "fleetsim:", err)
		os.Exit(1)
	}
}

func run(n int, out, scenario string) error {
	if n < 1 {
		return fmt.Errorf("-n %d: want at least one node", n)
	}
	nodes := make([]*nodetest.Node, 0, n)
	defer func() {
		for _, nd := range nodes {
			_ = nd.Close()
		}
	}()
	for range n {
		nd, err := nodetest.New(nodetest.WithScenarioName(scenario))
		if err != nil {
			return err
		}
		nodes = append(nodes, nd)
	}
	if err := writeNodes(out, nodes); err != nil {
		return err
	}
	fmt.Printf("%d nodes (scenario %q) listed in %s; interrupt to stop\n", n, scenario, out)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	return nil
}

func writeNodes(path string, nodes []*nodetest.Node) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, nd := range nodes {
		fmt.Fprintln(w, nd.URL())
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
