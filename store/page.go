package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Sort orders a list by one field, ties broken by id in the same direction.
type Sort struct {
	Field string // a field the resource's List accepts for sorting
	Desc  bool
}

// Position is where a page ends in its sort order: the sort field's value in the
// last record (nil when the record has none) and that record's id.
type Position struct {
	Value any // time.Time, string or nil
	ID    bson.ObjectID
}

// ListOptions selects one page of a list.
type ListOptions struct {
	Sort  Sort
	After *Position // start after this position; nil for the first page
	Limit int       // at most this many records; must be positive
	Count bool      // also count every record matching the filter
}

// Page is one page of a list.
type Page[T any] struct {
	Items []T
	Next  *Position // where the next page starts; nil on the last page
	Total *int64    // only when ListOptions.Count was set
}

// list runs a keyset-paginated query: filter AND "after the position", sorted by
// the field then _id, one record more than asked to learn whether a next page
// exists. Keyset paging, unlike skip, neither repeats nor skips a record that
// existed before the walk began, however many are inserted or deleted meanwhile.
func list[T any](ctx context.Context, s *Store, coll collection, filter bson.D, opts ListOptions, normalize func(*T)) (Page[T], error) {
	if opts.Limit <= 0 {
		return Page[T]{}, fmt.Errorf("store: list limit %d must be positive", opts.Limit)
	}
	if opts.Sort.Field == fieldName {
		opts.Sort.Field = fieldNameKey // see sortKey
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	leave, err := s.lists.enterWithin(ctx, 0.5)
	if err != nil {
		return Page[T]{}, translate(err)
	}
	defer leave()

	query := filter
	if opts.After != nil {
		query = append(bson.D{}, filter...)
		query = append(query, bson.E{Key: "$and", Value: bson.A{afterPosition(opts.Sort, *opts.After)}})
	}
	dir := 1
	if opts.Sort.Desc {
		dir = -1
	}
	findOpts := options.Find().
		SetSort(bson.D{{Key: opts.Sort.Field, Value: dir}, {Key: fieldID, Value: dir}}).
		SetLimit(int64(opts.Limit) + 1)
	cur, err := coll.Find(ctx, nonNil(query), findOpts)
	if err != nil {
		return Page[T]{}, translate(err)
	}
	defer cur.Close(ctx)

	page := Page[T]{Items: make([]T, 0, opts.Limit)}
	var last Position
	for cur.Next(ctx) {
		if len(page.Items) == opts.Limit {
			// One more record exists, so the page ends at the previous one.
			page.Next = &last
			break
		}
		var item T
		if err := cur.Decode(&item); err != nil {
			return Page[T]{}, fmt.Errorf("store: decode %s document: %w", coll.Name(), err)
		}
		// The position comes from the document as stored, not as normalized:
		// the next query must compare against what the database holds.
		last = positionOf(cur.Current, opts.Sort.Field)
		normalize(&item)
		page.Items = append(page.Items, item)
	}
	if err := cur.Err(); err != nil {
		return Page[T]{}, translate(err)
	}

	if opts.Count {
		n, err := coll.CountDocuments(ctx, nonNil(filter))
		if err != nil {
			return Page[T]{}, translate(err)
		}
		page.Total = &n
	}
	return page, nil
}

// positionOf reads a stored document's place in the order by field. Values of
// types that the API never writes there (old data) count as missing.
func positionOf(doc bson.Raw, field string) Position {
	var p Position
	p.ID, _ = doc.Lookup(fieldID).ObjectIDOK()
	v := doc.Lookup(field)
	switch v.Type {
	case bson.TypeDateTime:
		p.Value = v.Time().UTC()
	case bson.TypeString:
		p.Value = v.StringValue()
	}
	return p
}

// afterPosition is the condition "comes after p" in the order (field, _id),
// both ascending or both descending. A missing or null field sorts before every
// value, as MongoDB sorts it, so it needs its own branch: comparison operators
// never match null.
func afterPosition(sort Sort, p Position) bson.D {
	f := sort.Field
	cmp := "$gt"
	if sort.Desc {
		cmp = "$lt"
	}
	sameValueLaterID := func(v any) bson.D {
		return bson.D{{Key: f, Value: v}, {Key: fieldID, Value: bson.D{{Key: cmp, Value: p.ID}}}}
	}
	switch {
	case p.Value == nil && sort.Desc:
		// Descending, already among the records without the field: they come last.
		return sameValueLaterID(nil)
	case p.Value == nil:
		// Ascending, among the records without the field: then come all with it.
		return bson.D{{Key: "$or", Value: bson.A{
			sameValueLaterID(nil),
			bson.D{{Key: f, Value: bson.D{{Key: "$ne", Value: nil}}}},
		}}}
	case sort.Desc:
		// Descending from a value: smaller values, then the records without the field.
		return bson.D{{Key: "$or", Value: bson.A{
			bson.D{{Key: f, Value: bson.D{{Key: cmp, Value: p.Value}}}},
			sameValueLaterID(p.Value),
			bson.D{{Key: f, Value: nil}},
		}}}
	default:
		return bson.D{{Key: "$or", Value: bson.A{
			bson.D{{Key: f, Value: bson.D{{Key: cmp, Value: p.Value}}}},
			sameValueLaterID(p.Value),
		}}}
	}
}

// nonNil makes an empty filter an empty document: the driver refuses a nil one.
func nonNil(filter bson.D) bson.D {
	if filter == nil {
		return bson.D{}
	}
	return filter
}

// sortKey is the key a name sorts by: without case or accents, so that
// "aaron", "Adam" and "Álvaro" come before "Bob" and "Émile" before "zoe", as
// people read a list of names (byte order put every lower-case or accented
// name after "Z"). The embedded engine has no collations, so the key is
// stored beside the name, in name_key, and the lists sort by it.
//
// The key keeps at most maxSortKeyRunes characters: a page's cursor carries
// it, and decomposition can make one character many (U+FDFA is 18). Names
// alike that far sort by id.
func sortKey(name string) string {
	withoutMarks := strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Mn, r) {
			return -1 // a combining accent, split from its letter by NFKD
		}
		return r
	}, norm.NFKD.String(name))
	key := strings.ToLower(undecomposable.Replace(withoutMarks))
	if runes := []rune(key); len(runes) > maxSortKeyRunes {
		key = string(runes[:maxSortKeyRunes])
	}
	return key
}

// maxSortKeyRunes is the longest sort key: as long as the longest name.
const maxSortKeyRunes = 200

// undecomposable spells the Latin letters that carry their accent in their
// shape, which NFKD leaves whole, as the letters they are read as.
var undecomposable = strings.NewReplacer(
	"ø", "o", "Ø", "o", "ł", "l", "Ł", "l", "đ", "d", "Đ", "d", "ð", "d", "Ð", "d",
	"ħ", "h", "Ħ", "h", "ŧ", "t", "Ŧ", "t", "ı", "i", "æ", "ae", "Æ", "ae",
	"œ", "oe", "Œ", "oe", "ß", "ss", "ẞ", "ss", "þ", "th", "Þ", "th",
)

// fillNameKeys gives the sort key to every user and customer without one:
// the documents that the original CRM wrote. A name changed meanwhile keeps
// the key its change wrote.
func (s *Store) fillNameKeys(ctx context.Context) error {
	for _, coll := range []collection{s.users, s.customers} {
		if err := fillNameKeysOf(ctx, s, coll); err != nil {
			return err
		}
	}
	return nil
}

// nameKeyBatch is how many keys one bulk write fills on MongoDB.
const nameKeyBatch = 1000

// withoutNameKey is a document that fillNameKeysOf gives its sort key.
type withoutNameKey struct {
	ID   bson.ObjectID `bson:"_id"`
	Name *string       `bson:"name"` // nil: none, or null; it gets no key and sorts first
}

func fillNameKeysOf(ctx context.Context, s *Store, coll collection) error {
	ctx, cancel := context.WithTimeout(ctx, 10*s.timeout)
	defer cancel()
	cur, err := coll.Find(ctx, bson.D{{Key: fieldNameKey, Value: bson.D{{Key: "$exists", Value: false}}}},
		options.Find().SetProjection(bson.D{{Key: fieldName, Value: 1}}))
	if err != nil {
		return translate(err)
	}
	var missing []withoutNameKey
	if err := cur.All(ctx, &missing); err != nil {
		return translate(err)
	}
	missing = slices.DeleteFunc(missing, func(doc withoutNameKey) bool { return doc.Name == nil })
	if s.filterByIDOnly {
		// One by one: each update filters by _id alone, which the bundled
		// engine looks up by index, where {_id, name} read the whole
		// collection for every document (1,000 took 45 s, holding the write
		// gate, and the run timed out part-way from a few thousand on). Now
		// 1,000 take ~4 s, nearly all of it the engine's writes; a bulk
		// write of the same updates was no help there (it did not finish
		// 1,000 in minutes).
		for _, doc := range missing {
			if err := s.fillNameKey(ctx, coll, doc); err != nil {
				return err
			}
		}
		return nil
	}
	// On MongoDB the name in the filter keeps the key of a name changed
	// since the read (by this API or by the original CRM, which knows
	// nothing of revisions), and the writes go a batch at a time.
	for batch := range slices.Chunk(missing, nameKeyBatch) {
		models := make([]mongo.WriteModel, len(batch))
		for i, doc := range batch {
			models[i] = mongo.NewUpdateOneModel().
				SetFilter(bson.D{{Key: fieldID, Value: doc.ID}, {Key: fieldName, Value: *doc.Name}}).
				SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: fieldNameKey, Value: sortKey(*doc.Name)}}}})
		}
		if _, err := coll.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false)); err != nil {
			return translate(err)
		}
	}
	return nil
}

// fillNameKey gives doc its sort key on the bundled engine, filtering by _id
// alone (see the top of write.go). The name is compared here instead, under
// the document's lock, which every write of this process to it takes: a
// document renamed or deleted since the read is left alone. On an engine
// shared with other processes the step is claimed as well, as atRevision
// claims it, without changing the revision (the key is the store's own).
func (s *Store) fillNameKey(ctx context.Context, coll collection, doc withoutNameKey) error {
	defer s.lockDoc(doc.ID)()
	var current struct {
		Name     *string `bson:"name"`
		NameKey  *string `bson:"name_key"`
		Revision int64   `bson:"revision"`
	}
	opts := options.FindOne().SetProjection(bson.D{{Key: fieldName, Value: 1}, {Key: fieldNameKey, Value: 1}, {Key: fieldRevision, Value: 1}})
	err := translate(coll.FindOne(ctx, bson.D{{Key: fieldID, Value: doc.ID}}, opts).Decode(&current))
	if errors.Is(err, ErrNotFound) || (err == nil && (current.Name == nil || *current.Name != *doc.Name || current.NameKey != nil)) {
		return nil
	}
	if err != nil {
		return err
	}
	filter := bson.D{{Key: fieldID, Value: doc.ID}}
	if s.sharedEngine {
		var release func()
		filter, _, release, err = s.atRevision(ctx, coll, doc.ID, current.Revision)
		if errors.Is(err, ErrStale) || errors.Is(err, ErrNotFound) {
			return nil // written meanwhile by another process; the next run looks again
		}
		if err != nil {
			return err
		}
		defer release()
	}
	_, err = coll.UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: bson.D{{Key: fieldNameKey, Value: sortKey(*doc.Name)}}}})
	return translate(err)
}

// Conditions that the lists' filters share.

// anyOf is the condition "field is one of values" (for an array field: holds
// one of them). One value is a plain equality, which every index serves.
func anyOf[T any](field string, values []T) bson.E {
	if len(values) == 1 {
		return bson.E{Key: field, Value: values[0]}
	}
	return bson.E{Key: field, Value: bson.D{{Key: "$in", Value: values}}}
}

// searchCondition matches documents where any of fields contains text,
// case-insensitively. The text is quoted, so it is matched literally and can
// never become a regular expression of the caller's choosing. A name also
// matches without accents, through its sort key: "muller" finds "Müller", and
// "sparck" "Spärck", as sort=name orders them.
func searchCondition(text string, fields ...string) bson.E {
	literal := func(s string) bson.Regex { return bson.Regex{Pattern: regexp.QuoteMeta(s), Options: "i"} }
	or := make(bson.A, 0, len(fields)+1)
	for _, f := range fields {
		or = append(or, bson.D{{Key: f, Value: literal(text)}})
		if key := sortKey(text); f == fieldName && key != "" {
			or = append(or, bson.D{{Key: fieldNameKey, Value: literal(key)}})
		}
	}
	return bson.E{Key: "$or", Value: or}
}

// updatedSince is the condition "changed at or after t", for incremental sync.
func updatedSince(t time.Time) bson.E {
	return bson.E{Key: fieldUpdatedAt, Value: bson.D{{Key: "$gte", Value: ceilMillisecond(t)}}}
}

// timeRange is the condition "from ≤ t < to" with either end open, or nil.
func timeRange(from, to *time.Time) bson.D {
	var cond bson.D
	if from != nil {
		cond = append(cond, bson.E{Key: "$gte", Value: ceilMillisecond(*from)})
	}
	if to != nil {
		cond = append(cond, bson.E{Key: "$lt", Value: ceilMillisecond(*to)})
	}
	return cond
}

// ceilMillisecond rounds t up to BSON's millisecond precision. The driver
// would truncate it instead, and "after 22.4535 s" would then let 22.453 s in.
// Rounding up is right for both ends: stored times are whole milliseconds, so
// t ≥ 22.4535 and t < 22.4535 hold exactly when t ≥ 22.454 and t < 22.454.
func ceilMillisecond(t time.Time) time.Time {
	if r := t.Truncate(time.Millisecond); !r.Equal(t) {
		return r.Add(time.Millisecond)
	}
	return t
}
