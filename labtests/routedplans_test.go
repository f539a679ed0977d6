package labtests

import (
	"regexp"
	"testing"
)

// bfdUpRE counts sessions up in FRR's "show bfd peers brief".
func TestBFDUpRE(t *testing.T) {
	const head = "Session count: 3\nSessionId  LocalAddress  PeerAddress  Status\n=========  ============  ===========  ======\n"
	all := head + "3604565034 10.0.0.1 10.0.0.11 up\n1184962394 10.0.0.1 10.0.0.12 up\n2716013812 10.0.0.1 10.0.0.13 up\n"
	one := head + "3604565034 10.0.0.1 10.0.0.11 up\n1184962394 10.0.0.1 10.0.0.12 down\n2716013812 10.0.0.1 10.0.0.13 init\n"
	re := regexp.MustCompile(bfdUpRE(3))
	if !re.MatchString(all) {
		t.Errorf("three sessions up not matched:\n%s", all)
	}
	if re.MatchString(one) {
		t.Errorf("one session up matched as three:\n%s", one)
	}
	if !regexp.MustCompile(bfdUpRE(1)).MatchString(one) {
		t.Errorf("one session up not matched:\n%s", one)
	}
}
