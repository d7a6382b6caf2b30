// Package bench holds the project's benchmarks (`make bench`): warm forward overhead
// against a direct call, large bodies, auth and AWS calls per invocation, the login
// storm, cold start, binary size and RSS. Everything runs against the LivePerson
// simulator and the AWS fakes on loopback. The benchmarks only report figures
// (b.ReportMetric); no test asserts a duration. Results and the machine they came from
// are recorded in BENCHMARKS.md at the repository root.
package bench
