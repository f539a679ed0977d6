// Package kaimport converts a keepalived.conf (with its includes) into a
// director.yaml, and reports every keyword it could not carry over.
//
// The conversion has three stages: lexing with includes (lex.go, include.go),
// parsing into a tree of keyword nodes (parse.go), and converting that tree
// (walk.go, vrrp.go, lvs.go, checks.go, convert.go) into output.go's types. The result
// is checked with config.Parse, and any refusal is reported at the
// keepalived line the setting came from.
//
// Defaults that differ between the two are written out, so that the result
// behaves like keepalived did: VRRP version 2, forwarding nat, scheduler
// wlc, a UDP service when no protocol is given, keepalived's check timings
// with rise and fall 1. Health checks are written as checks: lists in
// director's schema by checksNode alone; with them the result is loaded too.
package kaimport
