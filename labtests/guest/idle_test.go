package main

import "testing"

// TestParseStat reads pgrp, utime and stime after a command name holding
// spaces and parentheses.
func TestParseStat(t *testing.T) {
	line := "4242 (we ird) (x)) S 1 4240 4240 0 -1 4194560 900 0 0 0 37 12 0 0 20 0 3 0 100 1234 56 18446744073709551615\n"
	st, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.pid != 4242 || st.comm != "we ird) (x)" || st.pgrp != 4240 || st.utime != 37 || st.stime != 12 {
		t.Errorf("parsed %+v", st)
	}
	if _, err := parseStat([]byte("12 no name")); err == nil {
		t.Error("stat without a name accepted")
	}
}

func TestVMRSS(t *testing.T) {
	if n := vmRSS([]byte("Name:\tx\nVmPeak:\t 9 kB\nVmRSS:\t   15236 kB\n")); n != 15236 {
		t.Errorf("VmRSS %d, want 15236", n)
	}
	if n := vmRSS([]byte("Name:\tkthreadd\n")); n != 0 {
		t.Errorf("kernel thread VmRSS %d, want 0", n)
	}
}

func TestPSSField(t *testing.T) {
	rollup := []byte("55d0-7ffd ---p 00000000 00:00 0 [rollup]\nRss:   38060 kB\nPss:   36946 kB\nPss_Anon:   4320 kB\n")
	if n := kibField(rollup, "Pss:"); n != 36946 {
		t.Errorf("Pss %d, want 36946", n)
	}
	if n := kibField([]byte("Rss:   38060 kB\nPss_Anon:   4320 kB\n"), "Pss:"); n != 0 {
		t.Errorf("Pss %d from a file without it, want 0", n)
	}
}
