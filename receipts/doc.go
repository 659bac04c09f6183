// Package receipts is the Receipts Flatlining runbook as code: a typed client
// for the node's receipts and node methods, a receipt Validator for node and
// explorer code, and Diagnose/Apply for the runbook itself.
package receipts
