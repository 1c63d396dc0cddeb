// Package testutil holds the test doubles and fixtures that more than one
// package under relay/ uses: a clock tests drive, and the envelope the load
// tool sends, and a benchmark's CPU time per op. Only tests import it.
package testutil
