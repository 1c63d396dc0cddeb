package routing

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseRateLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		header  string
		want    []RateLimit
		wantErr bool
	}{
		{"", nil, false},
		{"60::organization", []RateLimit{{RetryAfter: time.Minute, Scope: "organization"}}, false},
		{"2700:error;attachment:project:quota_exceeded", []RateLimit{{
			RetryAfter: 2700 * time.Second, Categories: []string{"error", "attachment"}, Scope: "project", Reason: "quota_exceeded",
		}}, false},
		{"60:metric_bucket:organization::custom;spans", []RateLimit{{
			RetryAfter: time.Minute, Categories: []string{"metric_bucket"}, Scope: "organization", Namespaces: []string{"custom", "spans"},
		}}, false},
		{" 1.5 : transaction : key , 10", []RateLimit{
			{RetryAfter: 1500 * time.Millisecond, Categories: []string{"transaction"}, Scope: "key"},
			{RetryAfter: 10 * time.Second},
		}, false},
		{"x:error:project,30::global", []RateLimit{{RetryAfter: 30 * time.Second, Scope: "global"}}, true},
		{"-1::project", nil, true},
		{"NaN::project", nil, true},
		{",,", nil, false},
		{"99999999999999999999::project", []RateLimit{{RetryAfter: maxRetryAfter, Scope: "project"}}, false},
		{"1e300::project", []RateLimit{{RetryAfter: maxRetryAfter, Scope: "project"}}, false},
	}
	for _, tt := range tests {
		got, err := ParseRateLimits(tt.header)
		if (err != nil) != tt.wantErr {
			t.Errorf("%q: err %v, want error %v", tt.header, err, tt.wantErr)
		}
		if err != nil && !errors.Is(err, ErrBadRateLimit) {
			t.Errorf("%q: %v does not wrap ErrBadRateLimit", tt.header, err)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q:\n got %+v\nwant %+v", tt.header, got, tt.want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"120", 2 * time.Minute, true},
		{"Sat, 01 Mar 2025 12:00:30 GMT", 30 * time.Second, true},
		{"Sat, 01 Mar 2025 11:00:00 GMT", 0, true}, // in the past
		{"soon", 0, false},
		{"", 0, false},
	} {
		got, ok := parseRetryAfter(tt.v, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%q: %s %v, want %s %v", tt.v, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzParseRateLimits(f *testing.F) {
	for _, s := range []string{"60::organization", "2700:error;attachment:project:quota_exceeded", "60:metric_bucket:organization::custom", "1.5,x", ":::::", "1e400::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		limits, _ := ParseRateLimits(header)
		if len(limits) > strings.Count(header, ",")+1 {
			t.Fatalf("%d limits from %d entries", len(limits), strings.Count(header, ",")+1)
		}
		for _, l := range limits {
			if l.RetryAfter < 0 || l.RetryAfter > maxRetryAfter {
				t.Fatalf("retry after %s out of range", l.RetryAfter)
			}
			for _, c := range l.Categories {
				if c == "" || strings.ContainsAny(c, ";:,") {
					t.Fatalf("bad category %q", c)
				}
			}
		}
	})
}
