package api

import (
	"strings"
	"testing"
)

// TestTextLimitsFromTheSpec checks that every text member that texts reads
// has its limit from the spec: a member missing here would be stored however
// long composing made it.
func TestTextLimitsFromTheSpec(t *testing.T) {
	for name, want := range map[string]int{
		"name": 200, "email": 254, "company": 200, "phone": 50, "notes": 10000, "description": 10000, "tags": 50,
	} {
		if got, ok := maxLengths[name]; !ok || got != want {
			t.Errorf("limit of %s: %d (known %v), want the spec's %d", name, got, ok, want)
		}
	}
	var text texts
	if got := text.tags([]string{"ok", strings.Repeat("\u0958", 26)}, "/tags"); len(got) != 1 ||
		len(text.refused) != 1 || text.refused[0].Pointer != "/tags/1" {
		t.Errorf("a tag of 52 characters once composed: kept %q, refused %+v", got, text.refused)
	}
}

// TestInvisible checks the characters that a text member may not consist of.
func TestInvisible(t *testing.T) {
	for _, r := range []rune{' ', '\u00a0', '\u3000', '\u200b', '\ufeff', '\u3164', '\u115f', '\u1160', '\uffa0',
		'\u034f', '\u17b4', '\u17b5', '\ufe0e', '\ufe0f', '\U000e0100', '\u0001', '\u007f', '\u0085', '\u2065'} {
		if !invisible(r) {
			t.Errorf("U+%04X counted as visible", r)
		}
	}
	for _, r := range []rune{'a', 'é', '\u0958', '\u2764', '\ufffd', '\u0301', '\U0001f600'} {
		if invisible(r) {
			t.Errorf("U+%04X counted as invisible", r)
		}
	}
}
