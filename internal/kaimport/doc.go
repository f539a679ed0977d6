// Package kaimport converts a keepalived.conf (with its includes) into a
// director.yaml, and reports every keyword it could not carry over.
//
// The conversion has three stages: lexing with includes (lex.go, include.go),
// parsing into a tree of keyword nodes (parse.go), and converting that tree
// (walk.go, vrrp.go, lvs.go, convert.go) into output.go's types. The result
// is checked with config.Parse, and any refusal is reported at the
// keepalived line the setting came from.
//
// Defaults that differ between the two are written out, so that the result
// behaves like keepalived did: VRRP version 2, forwarding nat, scheduler
// wlc, a UDP service when no protocol is given, keepalived's check timings.
// Health checks are emitted as check: keys by checkNode alone.
package kaimport
