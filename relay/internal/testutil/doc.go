// Package testutil holds the test doubles and fixtures that more than one
// package under relay/ uses: a clock tests drive, and the envelope the load
// tool sends, a benchmark's CPU time per op, and the testdata fixtures
// (Fixtures). Only tests import it.
package testutil
