package mongo

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/medshare/medshare/consent"
)

var _ consent.Outbox = (*RecordStore)(nil)

// defaultOutboxLimit is the page size of outbox listings without a limit.
const defaultOutboxLimit = 100

// Outbox entries are stored as outboxDoc: _id is the entry id, the other
// fields are consent.OutboxEntry's JSON names. Each listing is served by
// one index whose keys end in its sort (entry time, then _id), so a page
// reads only the entries it returns.
var outboxIndexes = []index{
	{name: "status_time_id", keys: bson.D{{Key: "status", Value: 1}, {Key: "entry.time", Value: 1}, {Key: "_id", Value: 1}}},
	{name: "patientRef_time_id", keys: bson.D{{Key: "entry.patientRef", Value: 1}, {Key: "entry.time", Value: 1}, {Key: "_id", Value: 1}}},
	{name: "status_patientRef_time_id", keys: bson.D{{Key: "status", Value: 1}, {Key: "entry.patientRef", Value: 1}, {Key: "entry.time", Value: 1}, {Key: "_id", Value: 1}}},
	{name: "time_id", keys: bson.D{{Key: "entry.time", Value: 1}, {Key: "_id", Value: 1}}},
}

// entryOrder is the order of every outbox listing: oldest first, by entry
// time (MongoDB keeps milliseconds), then id.
var entryOrder = bson.D{{Key: "entry.time", Value: 1}, {Key: "_id", Value: 1}}

// outboxDoc is one document of the outbox collection.
type outboxDoc struct {
	ID                  string `bson:"_id"`
	consent.OutboxEntry `bson:",inline"`
}

// Enqueue implements consent.Outbox: one insert, acknowledged once
// journaled on a majority (the client's write concern). The entry's time
// is kept in UTC, to the millisecond. ECONFLICT for a duplicate id;
// EINVALID for an invalid id, an empty patientRef or a zero time.
func (s *RecordStore) Enqueue(ctx context.Context, e consent.AccessEntry) error {
	switch {
	case !consent.ValidID(e.ID):
		return consent.Errorf(consent.EINVALID, "access entry id %q is invalid", e.ID)
	case e.PatientRef == "":
		return consent.Errorf(consent.EINVALID, "access entry %s has no patientRef", e.ID)
	case e.Time.IsZero():
		return consent.Errorf(consent.EINVALID, "access entry %s has no time", e.ID)
	}
	e.Time = e.Time.UTC()
	doc := outboxDoc{ID: e.ID, OutboxEntry: consent.OutboxEntry{
		Entry:    e,
		Status:   consent.OutboxPending,
		Enqueued: s.Now().UTC().Truncate(time.Millisecond),
	}}
	_, err := s.outbox.InsertOne(ctx, doc)
	if mongo.IsDuplicateKeyError(err) {
		return consent.WrapError(consent.ECONFLICT, err, "access entry %s is already in the outbox", e.ID)
	}
	return wrapError(err, "enqueue access entry %s", e.ID)
}

// PendingEntries implements consent.Outbox: up to limit (0 → 100) pending
// entries, oldest first by entry time then id. EINVALID for a negative
// limit.
func (s *RecordStore) PendingEntries(ctx context.Context, limit int) ([]consent.OutboxEntry, error) {
	return s.ListPending(ctx, "", "", limit)
}

// MarkEntriesAnchored implements consent.Outbox: one update of every
// listed entry, each atomic on its own, so a crash midway leaves some
// entries pending and the worker's retry marks them. Unknown ids match
// nothing; a repeat sets the same values.
func (s *RecordStore) MarkEntriesAnchored(ctx context.Context, ids []string, tx string, block uint64) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.outbox.UpdateMany(ctx,
		bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
		bson.D{{Key: "$set", Value: bson.D{
			{Key: "status", Value: consent.OutboxAnchored},
			{Key: "tx", Value: tx},
			{Key: "block", Value: block},
		}}})
	return wrapError(err, "mark %d access entries anchored", len(ids))
}

// OutboxEntries implements consent.Outbox. The cursor after is looked up
// for its time, and the page starts strictly after (time, id). EINVALID for
// a negative limit or an after cursor that names no entry.
func (s *RecordStore) OutboxEntries(ctx context.Context, patientRef, after string, limit int) ([]consent.OutboxEntry, error) {
	filter := bson.D{}
	if patientRef != "" {
		filter = append(filter, bson.E{Key: "entry.patientRef", Value: patientRef})
	}
	return s.listAfter(ctx, filter, after, limit)
}

// ListPending implements consent.Outbox, served by the index on status,
// patientRef, time and _id (or status, time and _id for all patients).
// EINVALID for a negative limit or an after cursor that names no entry.
func (s *RecordStore) ListPending(ctx context.Context, patientRef, after string, limit int) ([]consent.OutboxEntry, error) {
	filter := bson.D{{Key: "status", Value: consent.OutboxPending}}
	if patientRef != "" {
		filter = append(filter, bson.E{Key: "entry.patientRef", Value: patientRef})
	}
	return s.listAfter(ctx, filter, after, limit)
}

// listAfter returns up to limit entries matching filter in entryOrder,
// strictly after the entry after when it is not empty.
func (s *RecordStore) listAfter(ctx context.Context, filter bson.D, after string, limit int) ([]consent.OutboxEntry, error) {
	if after != "" {
		var pos outboxDoc
		err := s.outbox.FindOne(ctx, bson.D{{Key: "_id", Value: after}},
			options.FindOne().SetProjection(bson.D{{Key: "entry.time", Value: 1}})).Decode(&pos)
		if errors.Is(err, mongo.ErrNoDocuments) {
			return nil, consent.Errorf(consent.EINVALID, "outbox cursor %q names no entry", after)
		}
		if err != nil {
			return nil, wrapError(err, "list outbox entries: find cursor")
		}
		// The $gte bound lets one index scan start at the cursor's time;
		// the $or then drops the entries of that same time up to after.
		at := pos.Entry.Time
		filter = append(filter,
			bson.E{Key: "entry.time", Value: bson.D{{Key: "$gte", Value: at}}},
			bson.E{Key: "$or", Value: bson.A{
				bson.D{{Key: "entry.time", Value: bson.D{{Key: "$gt", Value: at}}}},
				bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: after}}}},
			}})
	}
	return s.findEntries(ctx, "list outbox entries", filter, limit)
}

// findEntries returns up to limit (0 → 100) entries matching filter in
// entryOrder. EINVALID for a negative limit.
func (s *RecordStore) findEntries(ctx context.Context, op string, filter bson.D, limit int) ([]consent.OutboxEntry, error) {
	switch {
	case limit < 0:
		return nil, consent.Errorf(consent.EINVALID, "limit %d is negative", limit)
	case limit == 0:
		limit = defaultOutboxLimit
	}
	cur, err := s.outbox.Find(ctx, filter, options.Find().SetSort(entryOrder).SetLimit(int64(limit)))
	if err != nil {
		return nil, wrapError(err, "%s", op)
	}
	var docs []outboxDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, wrapError(err, "%s", op)
	}
	out := make([]consent.OutboxEntry, len(docs))
	for i, d := range docs {
		out[i] = d.OutboxEntry
	}
	return out, nil
}
