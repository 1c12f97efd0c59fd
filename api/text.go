package api

import (
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/oapi-codegen/nullable"
	"golang.org/x/text/unicode/norm"
)

// texts reads the text members of a body as they are stored: trimmed of
// spaces, in Unicode's composed form (see nfc), and refused when nothing
// visible is left. It collects every member
// it refuses, so that one 400 names them all (err).
//
// The spec's schemas cannot say "not blank" for every client: their pattern
// \S refuses ASCII spaces, but kin-openapi's regular expressions (RE2), like
// most validators outside JavaScript, do not count U+00A0 or U+3000 as
// spaces; and a name of zero-width characters (U+200B, U+FEFF) shows as no
// name at all. An optional member of spaces alone was once taken for absent
// and silently dropped.
type texts struct{ refused []FieldError }

// required reads a member that the schema requires.
func (t *texts) required(text, pointer string) string {
	return deref(t.given(&text, pointer))
}

// given reads a member that may be absent (nil), keeping nil as nil.
func (t *texts) given(text *string, pointer string) *string {
	return t.read(text, FieldError{Pointer: pointer})
}

// read reads text from where (a body member or a query parameter).
func (t *texts) read(text *string, where FieldError) *string {
	if text == nil {
		return nil
	}
	trimmed := nfc(strings.TrimSpace(*text))
	if strings.TrimFunc(trimmed, invisible) == "" {
		where.Detail = "must not be blank"
		t.refused = append(t.refused, where)
		return nil
	}
	return &trimmed
}

// parameter reads a query parameter as stored text compares: a filter or a
// search of " vip " finds "vip". Absent is "", which filters nothing.
func (t *texts) parameter(text *string, name string) string {
	return deref(t.read(text, FieldError{Parameter: name}))
}

// parameters reads the values of a query parameter given any number of times.
func (t *texts) parameters(values []string, name string) []string {
	out := make([]string, 0, len(values))
	for _, v := range values {
		if v := t.read(&v, FieldError{Parameter: name}); v != nil {
			out = append(out, *v)
		}
	}
	return out
}

// optional reads an optional member of a create or a replace: absent is "",
// which stores none.
func (t *texts) optional(text *string, pointer string) string {
	return deref(t.given(text, pointer))
}

// patched reads a nullable member of a merge patch: absent → nil (unchanged),
// null → "" (cleared), a value as given reads it.
func (t *texts) patched(n nullable.Nullable[string], pointer string) *string {
	if !n.IsSpecified() {
		return nil
	}
	if n.IsNull() {
		return ptr("")
	}
	v, _ := n.Get()
	return t.given(&v, pointer)
}

// tags reads a list of tags, dropping duplicates and keeping the first
// occurrence's order.
func (t *texts) tags(tags []string, pointer string) []string {
	out := make([]string, 0, len(tags))
	for i, tag := range tags {
		if tag := t.given(&tag, pointer+"/"+strconv.Itoa(i)); tag != nil && !slices.Contains(out, *tag) {
			out = append(out, *tag)
		}
	}
	return out
}

// err is the 400 naming every member refused, or nil.
func (t *texts) err() error {
	if len(t.refused) == 0 {
		return nil
	}
	return &InvalidError{Fields: t.refused}
}

// nfc is text in Unicode's composed form (NFC), as it is stored and compared:
// "é" sent as e and a combining accent (as macOS keyboards may) is the same
// text as "é", and must be the same tag, the same email, the same search.
func nfc(text string) string { return norm.NFC.String(text) }

// invisible reports spaces and the format characters that print as nothing.
func invisible(r rune) bool { return unicode.IsSpace(r) || unicode.Is(unicode.Cf, r) }
