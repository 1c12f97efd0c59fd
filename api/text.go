package api

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/oapi-codegen/nullable"
	"golang.org/x/text/unicode/norm"

	"github.com/opencrm/crm/gen"
)

// texts reads the text members of a body as they are stored: trimmed of
// spaces, in Unicode's composed form (see nfc), and refused when nothing
// visible is left or when composing made them longer than the spec allows
// (see fits). It collects every member it refuses, so that one 400 names
// them all (err).
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
	if !t.fits(trimmed, where) {
		return nil
	}
	return &trimmed
}

// email reads an email member, normalised as stored (see normalizeEmail),
// keeping nil as nil.
func (t *texts) email(email *string, pointer string) *string {
	if email == nil {
		return nil
	}
	normalized := normalizeEmail(*email)
	if !t.fits(normalized, FieldError{Pointer: pointer}) {
		return nil
	}
	return &normalized
}

// fits refuses text longer, once composed, than the spec lets its body member
// be. The validator counted the characters as sent, but composing can add
// some: U+0958 is U+0915 U+093C in NFC, one of the characters that Unicode
// excludes from composition. Stored, such text would break the spec's
// maxLength in every answer, and a client sending back a record as read
// would be refused. Lengths count code points, as kin-openapi's do.
func (t *texts) fits(text string, where FieldError) bool {
	limit, ok := maxLengths[member(where.Pointer)]
	if !ok || where.Pointer == "" || utf8.RuneCountInString(text) <= limit {
		return true
	}
	where.Detail = fmt.Sprintf("must be at most %d characters once composed (NFC)", limit)
	t.refused = append(t.refused, where)
	return false
}

// member is the top-level member that a JSON Pointer points into: "tags"
// for /tags/3.
func member(pointer string) string {
	name, _, _ := strings.Cut(strings.TrimPrefix(pointer, "/"), "/")
	return name
}

// maxLengths is the spec's maxLength of every top-level text member of a
// request body, by name (for an array of text, its items' maxLength), so
// that texts checks the limits that the validator checked, and no second
// copy of them can drift. Members of the same name must have the same limit
// in every body, as they do (name is a PersonName everywhere), since texts
// knows a member by its pointer alone; the embedded spec is part of the
// program, so a spec that breaks this stops it at start-up.
var maxLengths = func() map[string]int {
	limits, err := textLimits()
	if err != nil {
		panic(err)
	}
	return limits
}()

func textLimits() (map[string]int, error) {
	spec, err := gen.GetSpec()
	if err != nil {
		return nil, fmt.Errorf("api: read the embedded spec: %w", err)
	}
	limits := map[string]int{}
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			if op.RequestBody == nil || op.RequestBody.Value == nil {
				continue
			}
			for _, media := range op.RequestBody.Value.Content {
				if media.Schema == nil || media.Schema.Value == nil {
					continue
				}
				for name, prop := range media.Schema.Value.Properties {
					limit := maxLengthOf(prop.Value)
					if limit < 0 {
						continue
					}
					if known, ok := limits[name]; ok && known != limit {
						return nil, fmt.Errorf("api: body member %q of %s %s has maxLength %d, elsewhere %d; texts needs one limit per member name", name, method, path, limit, known)
					}
					limits[name] = limit
				}
			}
		}
	}
	return limits, nil
}

// maxLengthOf is the maxLength of a text schema or of an array's items, or -1.
func maxLengthOf(s *openapi3.Schema) int {
	if s != nil && s.Type.Is(openapi3.TypeArray) && s.Items != nil {
		s = s.Items.Value
	}
	if s == nil || !s.Type.Is(openapi3.TypeString) || s.MaxLength == nil {
		return -1
	}
	return int(*s.MaxLength)
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

// invisible reports the characters that show as nothing: spaces, control
// and format characters (Cc, Cf), and the rest of Unicode's
// Default_Ignorable_Code_Point, which Go has no table for but which is Cf,
// Variation_Selector and Other_Default_Ignorable_Code_Point less some
// spaces: the Hangul fillers (U+3164, U+115F, U+1160, U+FFA0), the
// combining grapheme joiner U+034F, U+17B4, variation selectors (U+FE0F).
// Text of them alone shows as blank, as a name of U+200B does.
func invisible(r rune) bool {
	return unicode.IsSpace(r) || unicode.In(r, unicode.Cc, unicode.Cf,
		unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point)
}
