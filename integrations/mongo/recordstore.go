package mongo

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/medshare/medshare/consent"
	"github.com/medshare/medshare/records"
)

// Collection and index layout. Records are stored as records.Record with
// its bson tags and a server-generated _id; aliases as {_id: ref, id}.
var recordIndexes = []index{
	// One document per version; "latest" is the first in this order.
	{name: "id_version", keys: bson.D{{Key: "id", Value: 1}, {Key: "version", Value: -1}}, unique: true},
	// Records(f): equality on patient and status, then the id range and the
	// sort, all from the index.
	{name: "patient_status_id_version", keys: bson.D{
		{Key: "patientRef", Value: 1}, {Key: "status", Value: 1}, {Key: "id", Value: 1}, {Key: "version", Value: -1},
	}},
	// Records(f) with f.Org: the same, within one author organization, so
	// such a listing touches only that organization's records.
	{name: "patient_org_status_id_version", keys: bson.D{
		{Key: "patientRef", Value: 1}, {Key: "org", Value: 1}, {Key: "status", Value: 1},
		{Key: "id", Value: 1}, {Key: "version", Value: -1},
	}},
	{name: "status", keys: bson.D{{Key: "status", Value: 1}}},
}

// metadataOnly is the projection of a listing: a record without its
// content, which the server never sends.
var metadataOnly = bson.D{{Key: "ciphertext", Value: 0}, {Key: "wrappedDek", Value: 0}, {Key: "salt", Value: 0}}

// RecordStore is records.Store on a MongoDB database: collections records,
// aliases and notices. It is also the consent read model (consent.ConsentStore:
// collections consents and checkpoints) and the access-log outbox
// (consent.Outbox: collection outbox). It is safe for concurrent use.
type RecordStore struct {
	// Now stamps outbox entries' Enqueued time; Open sets it to time.Now.
	// Replace it, if at all, before the store is used.
	Now func() time.Time

	client      *mongo.Client
	records     *mongo.Collection
	aliases     *mongo.Collection
	consents    *mongo.Collection
	checkpoints *mongo.Collection
	outbox      *mongo.Collection
	notices     *mongo.Collection
}

var _ records.Store = (*RecordStore)(nil)

// Open connects to the MongoDB server at uri, uses database and creates the
// indexes it needs. EINVALID for a malformed uri or an empty database name;
// EUNAVAILABLE if no server answers within about five seconds or before ctx
// ends; EINTERNAL if the indexes cannot be created.
func Open(ctx context.Context, uri, database string) (*RecordStore, error) {
	if database == "" {
		return nil, consent.Errorf(consent.EINVALID, "MongoDB database name is empty")
	}
	client, err := connect(ctx, uri)
	if err != nil {
		return nil, err
	}
	db := client.Database(database)
	// The read model and the outbox store domain types as they are, keyed
	// by their JSON names, so the field paths in queries and indexes are
	// the names the API and the ledger use.
	jsonNames := options.Collection().SetBSONOptions(&options.BSONOptions{UseJSONStructTags: true})
	s := &RecordStore{
		Now:         time.Now,
		client:      client,
		records:     db.Collection("records"),
		aliases:     db.Collection("aliases"),
		consents:    db.Collection("consents", jsonNames),
		checkpoints: db.Collection("checkpoints"),
		outbox:      db.Collection("outbox", jsonNames),
		notices:     db.Collection("notices"),
	}
	for _, c := range []struct {
		coll    *mongo.Collection
		indexes []index
	}{{s.records, recordIndexes}, {s.consents, consentIndexes}, {s.outbox, outboxIndexes}, {s.notices, noticeIndexes}} {
		if err := ensureIndexes(ctx, c.coll, c.indexes); err != nil {
			_ = disconnect(client) // the first error matters
			return nil, err
		}
	}
	return s, nil
}

// CreateRecord implements records.Store. EINVALID for an empty id or a
// version below 1; ECONFLICT if that version exists.
func (s *RecordStore) CreateRecord(ctx context.Context, r *records.Record) error {
	switch {
	case r == nil || r.ID == "":
		return consent.Errorf(consent.EINVALID, "record id is empty")
	case r.Version < 1:
		return consent.Errorf(consent.EINVALID, "record %s: version %d is out of range", r.ID, r.Version)
	}
	_, err := s.records.InsertOne(ctx, r)
	if mongo.IsDuplicateKeyError(err) {
		return consent.WrapError(consent.ECONFLICT, err, "record %s version %d already exists", r.ID, r.Version)
	}
	return wrapError(err, "create record %s version %d", r.ID, r.Version)
}

// MarkAnchored implements records.Store. ENOTFOUND if the version does not
// exist.
func (s *RecordStore) MarkAnchored(ctx context.Context, id string, version int, anchorTx string, block uint64) error {
	res, err := s.records.UpdateOne(ctx,
		bson.D{{Key: "id", Value: id}, {Key: "version", Value: version}},
		bson.D{{Key: "$set", Value: bson.D{
			{Key: "status", Value: records.StatusAnchored},
			{Key: "anchorTx", Value: anchorTx},
			{Key: "anchorBlock", Value: block},
		}}})
	if err != nil {
		return wrapError(err, "mark record %s version %d anchored", id, version)
	}
	if res.MatchedCount == 0 {
		return consent.Errorf(consent.ENOTFOUND, "record %s version %d not found", id, version)
	}
	return nil
}

// DeleteRecord implements records.Store.
func (s *RecordStore) DeleteRecord(ctx context.Context, id string, version int) error {
	_, err := s.records.DeleteOne(ctx, bson.D{{Key: "id", Value: id}, {Key: "version", Value: version}})
	return wrapError(err, "delete record %s version %d", id, version)
}

// Record implements records.Store. ENOTFOUND if id has no version.
func (s *RecordStore) Record(ctx context.Context, id string) (*records.Record, error) {
	var r records.Record
	err := s.records.FindOne(ctx, bson.D{{Key: "id", Value: id}},
		options.FindOne().SetSort(bson.D{{Key: "version", Value: -1}})).Decode(&r)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, consent.Errorf(consent.ENOTFOUND, "record %s not found", id)
	}
	if err != nil {
		return nil, wrapError(err, "get record %s", id)
	}
	return &r, nil
}

// Records implements records.Store. EINVALID without a patient or with a
// negative limit.
//
// The query returns every anchored version in (id, version desc) order and
// keeps the first of each id; the cursor is abandoned once the page is
// full, so older versions cost at most a batch. The projection leaves
// content out: the server neither reads it into the reply nor sends it.
func (s *RecordStore) Records(ctx context.Context, f records.RecordFilter) ([]*records.Record, error) {
	limit, err := f.PageLimit()
	if err != nil {
		return nil, err
	}
	filter := bson.D{{Key: "patientRef", Value: f.PatientRef}}
	if f.Org != "" {
		filter = append(filter, bson.E{Key: "org", Value: f.Org})
	}
	filter = append(filter,
		bson.E{Key: "status", Value: records.StatusAnchored},
		bson.E{Key: "id", Value: bson.D{{Key: "$gt", Value: f.After}}})
	cur, err := s.records.Find(ctx, filter,
		options.Find().
			SetProjection(metadataOnly).
			SetSort(bson.D{{Key: "id", Value: 1}, {Key: "version", Value: -1}}).
			SetBatchSize(int32(min(limit+1, 1000))))
	if err != nil {
		return nil, wrapError(err, "list records")
	}
	defer cur.Close(context.WithoutCancel(ctx))
	rs := []*records.Record{}
	for len(rs) < limit && cur.Next(ctx) {
		var r records.Record
		if err := cur.Decode(&r); err != nil {
			return nil, wrapError(err, "decode record")
		}
		if len(rs) > 0 && rs[len(rs)-1].ID == r.ID {
			continue // an older anchored version
		}
		rs = append(rs, &r)
	}
	if err := cur.Err(); err != nil {
		return nil, wrapError(err, "list records")
	}
	return rs, nil
}

// PendingRecords implements records.Store, ordered by id and version.
func (s *RecordStore) PendingRecords(ctx context.Context) ([]*records.Record, error) {
	cur, err := s.records.Find(ctx, bson.D{{Key: "status", Value: records.StatusPending}},
		options.Find().SetSort(bson.D{{Key: "id", Value: 1}, {Key: "version", Value: 1}}))
	if err != nil {
		return nil, wrapError(err, "list pending records")
	}
	rs := []*records.Record{}
	if err := cur.All(ctx, &rs); err != nil {
		return nil, wrapError(err, "list pending records")
	}
	return rs, nil
}

// aliasDoc is one document of the aliases collection.
type aliasDoc struct {
	Ref string `bson:"_id"`
	ID  string `bson:"id"`
}

// SaveAlias implements records.Store. EINVALID if ref or id is empty;
// ECONFLICT if ref is already the alias of another id.
//
// The upsert matches {_id: ref, id: id}: an existing equal alias matches
// and changes nothing; a ref saved with another id does not match, so the
// insert collides on _id.
func (s *RecordStore) SaveAlias(ctx context.Context, ref, id string) error {
	if ref == "" || id == "" {
		return consent.Errorf(consent.EINVALID, "alias ref and id must not be empty")
	}
	_, err := s.aliases.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: ref}, {Key: "id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "id", Value: id}}}},
		options.Update().SetUpsert(true))
	if !mongo.IsDuplicateKeyError(err) {
		return wrapError(err, "save alias")
	}
	// Two concurrent upserts of the same pair can both try to insert; the
	// loser's duplicate key is only a conflict if the winner saved another id.
	m, lookupErr := s.Aliases(ctx, []string{ref})
	if lookupErr != nil {
		return lookupErr
	}
	if m[ref] == id {
		return nil
	}
	return consent.WrapError(consent.ECONFLICT, err, "alias %s already stands for another id", ref)
}

// Aliases implements records.Store.
func (s *RecordStore) Aliases(ctx context.Context, refs []string) (map[string]string, error) {
	m := make(map[string]string, len(refs))
	if len(refs) == 0 {
		return m, nil
	}
	cur, err := s.aliases.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: refs}}}})
	if err != nil {
		return nil, wrapError(err, "get aliases")
	}
	var docs []aliasDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, wrapError(err, "get aliases")
	}
	for _, d := range docs {
		m[d.Ref] = d.ID
	}
	return m, nil
}

// Ping implements records.Store: EUNAVAILABLE unless the primary answers.
func (s *RecordStore) Ping(ctx context.Context) error { return ping(ctx, s.client) }

// Close disconnects from the server, waiting a few seconds at most for
// operations in flight. Closing twice is not an error.
func (s *RecordStore) Close() error { return disconnect(s.client) }
