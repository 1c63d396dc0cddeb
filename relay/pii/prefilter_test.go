package pii

import (
	"math/rand/v2"
	"regexp"
	"testing"
)

// TestPrefilters: a prefilter never rules out a string its regex matches.
// It checks strings each regex matches, and many near them (random edits
// with the characters the regexes care about, non-ASCII folds included),
// and that each prefilter does rule out something.
func TestPrefilters(t *testing.T) {
	seeds := []string{
		"4111 1111 1111 1111", "371449635398431", "6011-0009-9013-9424", "5500005555555559",
		"078-05-1120", "10.0.0.1", "255.255.255.255", "::1", "fe80::1%eth0", "2001:db8::ff00:42:8329", "::ffff:10.0.0.1",
		"DE89370400440532013000", "GB82WEST12345698765432",
		"-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----",
		"https://user:pass@example.com", "//a:b@c", "ftp://x:y@h",
		`C:\Users\jane\x`, "/home/joe/x", "/Users/x", `c:/documents and settings/x`, `x\profiles\y`,
		"password", "PassWD", "my_secret", "API_KEY", "apikey", "oauth", "credentials", "mysql_pwd",
		"privateKey", "private_key", "token", "bearer", "OTP", "two-factor", "two_factor",
		"Bearer abc", "a@b.co", "uſers", "/homé/x", "ſecret", "tO\u212aen",
	}
	alphabet := []rune("0123456789-.:/\\@ _AZaz%\nBEGINKEYusershomeſ\u212aé\x00")
	r := rand.New(rand.NewPCG(1, 2))
	edit := func(s string) string {
		rs := []rune(s)
		for range 1 + r.IntN(3) {
			c := alphabet[r.IntN(len(alphabet))]
			switch i := r.IntN(len(rs) + 1); r.IntN(3) {
			case 0:
				rs = append(rs[:i], append([]rune{c}, rs[i:]...)...)
			case 1:
				if i < len(rs) {
					rs = append(rs[:i], rs[i+1:]...)
				}
			default:
				if i < len(rs) {
					rs[i] = c
				}
			}
		}
		return string(rs)
	}
	inputs := append([]string{}, seeds...)
	for range 200 {
		for _, s := range seeds {
			inputs = append(inputs, edit(s), "x "+edit(s)+" y")
		}
	}
	for range 2000 {
		var rs []rune
		for range r.IntN(30) {
			rs = append(rs, alphabet[r.IntN(len(alphabet))])
		}
		inputs = append(inputs, string(rs))
	}
	for re, may := range prefilters {
		matched, ruled := 0, 0
		for _, s := range inputs {
			m := re.MatchString(s)
			if m {
				matched++
			}
			if !may.may([]byte(s)) {
				ruled++
				if m {
					t.Errorf("%s: prefilter rules out %q, which matches", name(re), s)
				}
			}
		}
		if matched == 0 || ruled == 0 {
			t.Errorf("%s: %d of %d strings match, %d ruled out: the test proves nothing", name(re), matched, len(inputs), ruled)
		}
	}
}

func name(re *regexp.Regexp) string {
	s := re.String()
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return s
}
