//go:build race

package report

// raceDetector says whether the tests run under -race: the tests that
// build a 300k-operation history take minutes there and nothing of theirs
// runs concurrently, so they run without it (make test-integration).
const raceDetector = true
