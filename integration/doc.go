// Package integration holds black-box tests of Baton: real relays on
// loopback, kfake brokers on their own ports, fake upstream relays and real
// SDK clients. It has no non-test code.
package integration
