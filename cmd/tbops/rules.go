package main

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/theblock/tbops"
	"github.com/theblock/tbops/energy"
	"github.com/theblock/tbops/governor"
	"github.com/theblock/tbops/node"
	"github.com/theblock/tbops/promq"
	"github.com/theblock/tbops/receipts"
	tbruntime "github.com/theblock/tbops/runtime"
	"github.com/theblock/tbops/treasury"
)

// defaultRunbookURL is where runbook_url annotations point unless --runbook-url
// (or TB_RUNBOOK_URL) says otherwise; the anchor of each runbook's section is added.
const defaultRunbookURL = "https://github.com/theblock/the-block/blob/main/docs/operations/RUNBOOK.md"

func (a *app) rulesCmd() *cobra.Command {
	var base string
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "Print Prometheus alerting rules for every runbook and SLO (YAML)",
		Long: `rules prints a Prometheus rules file: one group per runbook, with the runbook's
alert thresholds and its SLO table's alert thresholds. "for N epochs" becomes
for: N×2m (an epoch is 120 blocks of about one second). Critical rules page,
warning rules create tickets (the severity label). Each rule's runbook label
names the runbook that diagnoses it: route runbook=~".+" to tbops serve's
/api/v1/alertmanager webhook and serve diagnoses that runbook for the alert's
instance (README, "Alert enrichment"). The description annotation names the
instance. Check it with:

  tbops rules > tbops-rules.yml && promtool check rules tbops-rules.yml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if base == "" {
				base = a.getenv("TB_RUNBOOK_URL")
			}
			if base == "" {
				base = defaultRunbookURL
			}
			// The annotation travels to Prometheus, Alertmanager and pagers: never with a password.
			f, err := buildRuleFile(allRules(), tbops.RedactURL(base))
			if err != nil {
				return err
			}
			if a.output == "json" {
				return a.printJSON(f)
			}
			out, err := f.yaml()
			if err != nil {
				return err
			}
			_, err = a.stdout.Write(out)
			return err
		},
	}
	cmd.Flags().StringVar(&base, "runbook-url", "", "runbook document URL for runbook_url annotations (env TB_RUNBOOK_URL)")
	return cmd
}

// allRules gathers every package's exported rules, one package a line.
func allRules() []promq.Rule {
	var out []promq.Rule
	out = append(out, treasury.Rules()...)
	out = append(out, energy.Rules()...)
	out = append(out, receipts.Rules()...)
	out = append(out, governor.Rules()...)
	out = append(out, tbruntime.Rules()...)
	out = append(out, node.Rules()...)
	return out
}

type ruleFile struct {
	Groups []ruleGroup `yaml:"groups" json:"groups"`
}

type ruleGroup struct {
	Name  string      `yaml:"name" json:"name"`
	Rules []ruleEntry `yaml:"rules" json:"rules"`
}

type ruleEntry struct {
	Alert       string            `yaml:"alert" json:"alert"`
	Expr        string            `yaml:"expr" json:"expr"`
	For         string            `yaml:"for,omitempty" json:"for,omitempty"`
	Labels      map[string]string `yaml:"labels" json:"labels"`
	Annotations map[string]string `yaml:"annotations" json:"annotations"`
}

// buildRuleFile groups rules into a Prometheus rules file, one group per runbook
// in a stable order. Two rules with the same alert name and the same static
// labels within a group are an error: Prometheus would accept them, but they
// would be indistinguishable on a pager. One name with distinct static labels
// (a rule per market) is one alert, restated.
func buildRuleFile(rules []promq.Rule, base string) (ruleFile, error) {
	byRunbook := map[string][]promq.Rule{}
	for _, r := range rules {
		byRunbook[r.Runbook] = append(byRunbook[r.Runbook], r)
	}
	names := make([]string, 0, len(byRunbook))
	for k := range byRunbook {
		names = append(names, k)
	}
	sort.Strings(names)
	var f ruleFile
	for _, rb := range names {
		g := ruleGroup{Name: "tbops-" + rb}
		seen := map[string]bool{}
		for _, r := range byRunbook[rb] {
			key := r.Alert + fmt.Sprint(r.Labels) // fmt prints maps sorted by key
			if seen[key] {
				return ruleFile{}, fmt.Errorf("rules: alert %s appears twice in runbook %s", r.Alert, rb)
			}
			seen[key] = true
			if r.Severity != tbops.StatusCritical && r.Severity != tbops.StatusWarning {
				return ruleFile{}, fmt.Errorf("rules: alert %s has severity %q, want critical or warning", r.Alert, r.Severity)
			}
			e := ruleEntry{
				Alert:  r.Alert,
				Expr:   r.PromQL(),
				Labels: map[string]string{"severity": string(r.Severity), "runbook": rb},
				Annotations: map[string]string{
					"summary": r.Summary,
					// The node in the text: a notification (Alertmanager's, or
					// tbops serve's from its webhook) says which one fired.
					"description": "{{ $labels.instance }}: " + r.Summary + " (runbook " + rb + ")",
					"runbook_url": strings.TrimRight(base, "#") + runbookAnchor(rb, r.SLO),
				},
			}
			for k, v := range r.Labels {
				e.Labels[k] = v
			}
			if r.SLO != "" {
				e.Labels["slo"] = r.SLO
			}
			if r.For > 0 {
				e.For = model.Duration(r.For).String()
			}
			g.Rules = append(g.Rules, e)
		}
		f.Groups = append(f.Groups, g)
	}
	return f, nil
}

func (f ruleFile) yaml() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# Generated by `tbops rules`: the Fast-Mainnet runbook's alert thresholds and SLOs.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(f); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// runbookAnchor links SLO rules to the SLO table and the rest to their runbook section.
func runbookAnchor(runbook, slo string) string {
	if slo != "" {
		return "#slo-definitions"
	}
	switch runbook {
	case "governor-audit":
		return "#economics-autopilot-gate"
	case "runtime-reactor":
		return "#runtime-reactor"
	case "node-health":
		return "#receipts-flatlining" // its step 4 checks block height and progression
	}
	return "#" + runbook // treasury-stuck, energy-stalled, receipts-flatlining are the sections' own anchors
}
