#include "controller/records.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "banyan/common/ids.h"

namespace banyan::provider::controller {

using common::ErrorCode;
using common::makeError;

namespace {

rapidjson::Value key(std::string_view k, rapidjson::Document::AllocatorType& a) {
  return rapidjson::Value(k.data(), static_cast<rapidjson::SizeType>(k.size()), a);
}

const rapidjson::Value* member(const rapidjson::Value& obj, std::string_view k) {
  if (!obj.IsObject()) return nullptr;
  auto it = obj.FindMember(rapidjson::Value(rapidjson::StringRef(k.data(), k.size())));
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

void put(rapidjson::Document& doc, std::string_view k, rapidjson::Value value) {
  auto& a = doc.GetAllocator();
  auto it = doc.FindMember(rapidjson::Value(rapidjson::StringRef(k.data(), k.size())));
  if (it != doc.MemberEnd()) {
    it->value = std::move(value);
  } else {
    doc.AddMember(key(k, a), std::move(value), a);
  }
}

}  // namespace

std::string jsonString(const rapidjson::Value& obj, std::string_view k) {
  const rapidjson::Value* v = member(obj, k);
  return v && v->IsString() ? std::string(v->GetString(), v->GetStringLength()) : std::string();
}

std::string Obj::str(std::string_view k) const { return jsonString(doc, k); }

bool Obj::boolean(std::string_view k, bool fallback) const {
  const rapidjson::Value* v = member(doc, k);
  return v && v->IsBool() ? v->GetBool() : fallback;
}

int64_t Obj::integer(std::string_view k, int64_t fallback) const {
  const rapidjson::Value* v = member(doc, k);
  return v && v->IsInt64() ? v->GetInt64() : fallback;
}

std::vector<std::string> Obj::strings(std::string_view k) const {
  std::vector<std::string> out;
  const rapidjson::Value* v = member(doc, k);
  if (v && v->IsArray()) {
    for (const auto& item : v->GetArray()) {
      if (item.IsString()) out.emplace_back(item.GetString(), item.GetStringLength());
    }
  }
  return out;
}

bool Obj::has(std::string_view k) const {
  const rapidjson::Value* v = member(doc, k);
  return v && !v->IsNull();
}

void Obj::set(std::string_view k, std::string_view value) {
  put(doc, k, rapidjson::Value(value.data(), static_cast<rapidjson::SizeType>(value.size()),
                               doc.GetAllocator()));
}
void Obj::setInt(std::string_view k, int64_t value) { put(doc, k, rapidjson::Value(value)); }
void Obj::setBool(std::string_view k, bool value) { put(doc, k, rapidjson::Value(value)); }
void Obj::setNull(std::string_view k) { put(doc, k, rapidjson::Value()); }
void Obj::touch() { set("updated_at", nowTimestamp()); }

std::string Obj::body() const {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  doc.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

Result<Obj> parseObj(store::Record rec) {
  Obj o;
  o.doc.Parse(rec.body.data(), rec.body.size());
  if (o.doc.HasParseError() || !o.doc.IsObject()) {
    return makeError(ErrorCode::kInternal, "stored body is not a JSON object", rec.kind + " " + rec.id);
  }
  o.rec = std::move(rec);
  return o;
}

Obj newObj(std::string kind, std::string id) {
  Obj o;
  o.rec.kind = std::move(kind);
  o.rec.id = std::move(id);
  o.doc.SetObject();
  return o;
}

Result<std::optional<Obj>> loadObj(store::Transaction& tx, std::string_view kind, std::string_view id) {
  auto rec = tx.get(kind, id);
  if (!rec) return rec.error();
  if (!rec->has_value()) return std::optional<Obj>();
  auto o = parseObj(std::move(**rec));
  if (!o) return o.error();
  return std::optional<Obj>(std::move(*o));
}

Result<std::vector<Obj>> loadObjs(store::Transaction& tx, const store::Query& query) {
  auto recs = tx.list(query);
  if (!recs) return recs.error();
  std::vector<Obj> out;
  out.reserve(recs->size());
  for (auto& r : *recs) {
    auto o = parseObj(std::move(r));
    if (!o) return o.error();
    out.push_back(std::move(*o));
  }
  return out;
}

Result<void> saveObj(store::Transaction& tx, Obj& obj) {
  obj.rec.body = obj.body();
  return tx.update(obj.rec);
}

Result<void> insertObj(store::Transaction& tx, Obj& obj) {
  obj.rec.body = obj.body();
  return tx.insert(obj.rec);
}

std::string nowTimestamp() { return common::utcTimestamp(); }

std::string newUuid() { return common::newUuid(); }

}  // namespace banyan::provider::controller
