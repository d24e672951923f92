//go:build race

package labtest

// raceBuild: the tests run with the race detector, so the binaries they
// start are built with it too.
const raceBuild = true
