// Package testworld holds what the tests run against, kept apart from the product so a
// reader can tell the two by the folder: the LivePerson simulator (lpsim), the AWS
// JSON-protocol fakes (awsfake), a Lambda Runtime API server for the built bootstraps
// (runtimeapi), the fauxqs SQS emulator (sqsemu), the world that assembles them
// (testenv), an in-memory session source (memsession), an EMF reader (emfdoc) and the
// SDK HTTP client the fakes are reached with (sdkhttp).
//
// It sits under shared/ rather than in a top-level internal/ so that e2e/ and bench/,
// outside shared/, can import it. Only cmd/local (the sandbox) may link it into a
// binary; guard_test.go holds that rule.
package testworld
