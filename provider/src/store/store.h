// The provider's database seam: every API object, the durable job queue, and the
// transactions that keep them consistent across several provider processes.
//
// Objects are stored as JSON documents with a few indexed columns. The API layer owns
// the meaning of every field (Octavia's); the store only filters by the indexed columns
// and keeps writes atomic. One column comes from the body itself: `name`, the body's
// top-level "name" ("" when null or missing), kept by the database from the body on
// every write, because a name is how users look objects up (`openstack loadbalancer
// show NAME` lists with ?name=). Implementations: SQLite (embedded default, WAL) and
// PostgreSQL (several API/worker nodes on one database). Both are thread-safe: any
// thread may call any method; each call to read()/write() runs on one connection.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "banyan/common/result.h"

namespace banyan::provider::store {

using common::Result;

// One object. kind is a lowercase identifier chosen by the caller: "loadbalancer",
// "listener", "pool", "member", "healthmonitor", "l7policy", "l7rule", "quota",
// "flavor", "flavorprofile", "availability_zone", "availability_zone_profile",
// "amphora", ... The store never looks inside body.
struct Record {
  std::string kind;
  std::string id;
  std::string project_id;        // "" for objects of no project (flavors, providers)
  std::string parent_id;         // listener/pool -> load balancer, member/health monitor -> pool,
                                 // l7policy -> listener, l7rule -> l7policy; "" if none
  std::string load_balancer_id;  // the load balancer the object hangs under; "" if none
  std::string body;              // a JSON object (a write of text that is not JSON fails:
                                 // both databases read the name out of it)
  int64_t revision = 0;          // set by the store: 1 on insert, +1 on every update
};

// Which records list()/count() return. Unset fields do not filter. Results come in
// insertion order (stable across calls), which the API's default sort relies on.
struct Query {
  std::string kind;
  std::optional<std::string> project_id;
  std::optional<std::string> parent_id;
  std::optional<std::string> load_balancer_id;
  std::optional<std::string> name{};  // the body's "name"; "" also matches null or missing
  std::vector<std::string> ids{};     // when non-empty, only these ids
};

// A column a page can be ordered by: the indexed columns whose text is also the API
// object's field of the same name, so the API's sort by that field is an index order.
// kName orders by the body's name as Query::name reads it ("" for null or missing).
enum class SortColumn { kId, kProjectId, kName };

struct OrderBy {
  SortColumn column;
  bool ascending = true;
};

// One page of a list, cut by the database (keyset pagination, Octavia's paging pushed
// into the query). Text compares byte by byte (PostgreSQL: COLLATE "C"), as std::string
// does, so a page is the same slice on every backend and in the API's own sort.
struct PageSpec {
  std::vector<OrderBy> order;  // then insertion order (ascending) as the last tie-break
  bool backward = false;       // the exact reverse of that whole order, tie-break included
  // Only records strictly after this one in the order. It must be a record the query
  // lists; when it is not (missing, another kind, filtered out), the page is empty.
  std::optional<std::string> after_id;
  size_t limit = 0;            // at most this many records; 0: no limit
};

// Work for the controller, written in the same transaction as the objects it is about,
// so an accepted API request is never lost.
struct JobSpec {
  std::string kind;         // e.g. "loadbalancer.create"
  std::string payload;      // JSON, the store never looks inside
  std::string serial_key;   // jobs with the same non-empty key never run at the same
                            // time and start in enqueue order (the load balancer id)
  std::chrono::milliseconds delay{0};  // not claimable before now + delay
};

struct Job {
  int64_t id = 0;
  std::string kind;
  std::string payload;
  std::string serial_key;
  int attempts = 0;         // how many times it was claimed, this claim included
  std::string last_error;   // from the last retryJob()
};

// A transaction in progress. Valid only inside the callback given to Store::read or
// Store::write. Errors: kNotFound, kConflict (duplicate id), kUnavailable (database).
class Transaction {
 public:
  virtual ~Transaction() = default;

  // Inside Store::write, get() also locks the record until the transaction ends
  // (PostgreSQL: FOR UPDATE), so get-then-update never loses a concurrent update.
  virtual Result<std::optional<Record>> get(std::string_view kind, std::string_view id) = 0;
  virtual Result<std::vector<Record>> list(const Query& query) = 0;
  virtual Result<int64_t> count(const Query& query) = 0;
  // Records of kind whose parent_id is one of parent_ids, in insertion order: the
  // children of a whole page of objects in one query instead of one query per object.
  virtual Result<std::vector<Record>> listByParents(std::string_view kind,
                                                    const std::vector<std::string>& parent_ids) = 0;

  // The children of the given kinds under parent_ids that the API shows: those whose
  // body's top-level "provisioning_status" is not "DELETED" (deleted objects wait for
  // housekeeping, invisible). Each record carries kind, id and parent_id only (the
  // rest empty): a page's relation lists need no more, and both backends answer from
  // an index without reading a body. Each parent's children of one kind come in
  // insertion order; kinds and parents in any order. Several kinds (a load balancer's
  // listeners and pools) are one round trip to PostgreSQL. The default filters
  // listByParents.
  virtual Result<std::vector<Record>> listLiveChildIds(const std::vector<std::string>& kinds,
                                                       const std::vector<std::string>& parent_ids);

  // A hint that listLiveChildIds(kinds, parent_ids) follows the transaction's next
  // statement (a show: the object, then its relation lists). PostgreSQL sends the two
  // statements in one round trip when the next one starts a read transaction, and the
  // matching listLiveChildIds call takes that answer (same snapshot); any other call
  // runs as usual. The default ignores it: a local call gains nothing.
  virtual void prefetchLiveChildIds(const std::vector<std::string>& kinds, const std::vector<std::string>& parent_ids) {
    (void)kinds;
    (void)parent_ids;
  }
  // The same for get(kind, id) (a member show reads its pool, then the member),
  // list(query) (a pool's members after the pool) and listPage(query, page) (a page
  // after its marker). One hint at a time: a hint replaces one not yet sent.
  virtual void prefetchGet(std::string_view kind, std::string_view id) {
    (void)kind;
    (void)id;
  }
  virtual void prefetchList(const Query& query) { (void)query; }
  virtual void prefetchListPage(const Query& query, const PageSpec& page) {
    (void)query;
    (void)page;
  }

  // Records of query (query.ids must be empty) in page's order, after page.after_id, at
  // most page.limit. The default sorts list(query) in memory (correct for any wrapper
  // that does not forward it); both backends do it in one statement.
  virtual Result<std::vector<Record>> listPage(const Query& query, const PageSpec& page);

  // Writes; calling one inside Store::read is a broken invariant.
  virtual Result<void> insert(Record& record) = 0;  // kConflict when (kind, id) exists
  virtual Result<void> update(Record& record) = 0;  // kNotFound when missing; bumps revision
  virtual Result<void> remove(std::string_view kind, std::string_view id) = 0;  // kNotFound
  // Serialises writers on key until the transaction ends (PostgreSQL: an advisory
  // transaction lock; SQLite: write transactions are already serial). Callers lock
  // "loadbalancer:<id>" before a status check-and-set, "quota:<project>" before a
  // quota count-and-insert.
  virtual Result<void> lockKey(std::string_view key) = 0;
  virtual Result<int64_t> enqueueJob(const JobSpec& job) = 0;

  // Batches: one call for many records, for writers that handle thousands of records per
  // transaction (the health manager). PostgreSQL does each in one statement instead of a
  // round trip per record. The defaults loop over the single-record calls above (what
  // SQLite does anyway: its statements are local calls), so a wrapper that does not
  // forward them stays correct. Empty inputs cost nothing.

  // The records of kind with these ids that exist, ordered by id (missing ids are left
  // out; duplicates are returned once). Inside Store::write() every returned record is
  // locked as by get(), in id order: a fixed order, so two batch writers locking
  // overlapping sets do not deadlock on each other.
  virtual Result<std::vector<Record>> getMany(std::string_view kind, const std::vector<std::string>& ids);
  // Records of kind whose load_balancer_id is one of lb_ids, in insertion order within
  // each load balancer (the order across load balancers is unspecified). No locks.
  virtual Result<std::vector<Record>> listByLoadBalancers(std::string_view kind,
                                                          const std::vector<std::string>& lb_ids);
  // insert() of every record (sets each revision to 1). kConflict when any (kind, id)
  // exists already or appears twice; the others may have been inserted, so the caller
  // must fail its transaction (return the error).
  virtual Result<void> insertMany(std::vector<Record>& records);
  // update() of every record (bumps each revision, sets updated_at). kNotFound when any
  // is missing; the others may have been updated, so the caller must fail its
  // transaction. Lock the records first (get/getMany) when others may write them: the
  // order in which one statement locks rows is the database's choice.
  virtual Result<void> updateMany(std::vector<Record>& records);
  // lockKey() of every key, taken in byte order of the keys (every implementation), so
  // two callers locking overlapping sets never deadlock on each other.
  virtual Result<void> lockKeys(const std::vector<std::string>& keys);
};

// Announcements that some process queued a job (JobSpec), for workers that would
// otherwise find it only at their next poll. Made by Store::listenForJobs.
class JobListener {
 public:
  virtual ~JobListener() = default;  // stops; no callback runs once it has returned
  // True while announcements arrive (the listening connection is up).
  virtual bool connected() const = 0;
};

struct JobListenerCallbacks {
  // A job may have become claimable. Runs on the listener's own thread; must be quick
  // (wake a worker). Also called once after every (re)connection: what was queued while
  // the channel was down was never announced.
  std::function<void()> on_job;
  // The channel came up (true) or was lost (false): a worker polls slowly only while it
  // is up. Same thread as on_job.
  std::function<void(bool)> on_connected;
};

class Store {
 public:
  virtual ~Store() = default;

  // Brings the schema to the newest version (idempotent; safe when several processes
  // start at once). Also run by openStore().
  virtual Result<void> migrate() = 0;
  virtual Result<int> schemaVersion() = 0;

  // Runs fn in a transaction. write() commits when fn returns ok and rolls back
  // otherwise (fn's error is returned); on a serialization failure or deadlock it
  // retries fn a few times, so fn must have no effect outside the transaction.
  // fn must not call this same Store again (a nested write() would wait for itself).
  virtual Result<void> read(const std::function<Result<void>(Transaction&)>& fn) = 0;
  virtual Result<void> write(const std::function<Result<void>(Transaction&)>& fn) = 0;

  // The job queue. claimJob takes the oldest claimable job: queued and due, or claimed
  // by a worker whose lease ran out (it died); never one whose serial_key has another
  // job under a live claim. Several processes may claim at once and never get the same
  // job (PostgreSQL: FOR UPDATE SKIP LOCKED).
  virtual Result<std::optional<Job>> claimJob(std::string_view worker_id,
                                              std::chrono::milliseconds lease) = 0;
  virtual Result<void> renewJob(int64_t job_id, std::string_view worker_id,
                                std::chrono::milliseconds lease) = 0;  // kConflict: claim lost
  virtual Result<void> finishJob(int64_t job_id, std::string_view worker_id) = 0;
  virtual Result<void> retryJob(int64_t job_id, std::string_view worker_id,
                                std::chrono::milliseconds delay, std::string_view error) = 0;
  virtual Result<int64_t> pendingJobs() = 0;  // queued or claimed

  // Announces jobs queued by any process on the database until the returned listener is
  // destroyed; null when the backend has no such channel (SQLite: workers of another
  // process poll). PostgreSQL: LISTEN on one dedicated connection, reconnected with
  // backoff when it drops; enqueueJob() and retryJob() send the NOTIFY, delivered when
  // their transaction commits.
  virtual std::unique_ptr<JobListener> listenForJobs(JobListenerCallbacks callbacks);
};

// Opens a store from an Octavia-style connection URL and migrates it:
//   sqlite:////var/lib/banyan/banyan.sqlite   (absolute path after "sqlite:///")
//   sqlite:///relative/path.sqlite
//   postgresql://user:password@host:port/dbname[?options]   (also postgresql+psycopg2://)
// PostgreSQL keeps up to the URL's pool_size connections, default_pool_size when it
// names none.
constexpr int kDefaultPoolSize = 8;
Result<std::unique_ptr<Store>> openStore(std::string_view url, int default_pool_size = kDefaultPoolSize);

}  // namespace banyan::provider::store
