#include "keystone_server.h"

#include <rapidjson/document.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace banyan::testing {
namespace {

using common::ErrorCode;
using common::makeError;

std::string shellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out.push_back(c);
  }
  return out + "'";
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void readMap(const rapidjson::Value& doc, const char* key,
             std::map<std::string, std::string>& out) {
  auto it = doc.FindMember(key);
  if (it == doc.MemberEnd() || !it->value.IsObject()) return;
  for (const auto& m : it->value.GetObject()) {
    if (m.value.IsString()) out[m.name.GetString()] = m.value.GetString();
  }
}

std::string jsonEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

}  // namespace

common::Result<std::unique_ptr<KeystoneServer>> KeystoneServer::start(
    const KeystoneServerOptions& options) {
  static std::atomic<int> counter{0};
  std::unique_ptr<KeystoneServer> ks(new KeystoneServer());
  ks->dir_ = (std::filesystem::temp_directory_path() /
              ("banyan-keystone-" + std::to_string(::getpid()) + "-" + std::to_string(counter++)))
                 .string();
  std::filesystem::remove_all(ks->dir_);
  std::filesystem::create_directories(ks->dir_);
  std::string cmd = "KEYSTONE_TOKEN_EXPIRATION=" + std::to_string(options.token_expiration_seconds);
  if (!options.loadbalancer_url.empty())
    cmd += " LOADBALANCER_URL=" + shellQuote(options.loadbalancer_url);
  cmd += " " + shellQuote(BANYAN_KEYSTONE_SCRIPT) + " start " + shellQuote(ks->dir_) + " > " +
         shellQuote(ks->dir_ + "/start.out") + " 2>&1";
  ks->running_ = true;  // from here on the destructor stops whatever started
  if (std::system(cmd.c_str()) != 0) {
    return makeError(ErrorCode::kUnavailable,
                     "keystone-server.sh start failed: " + readFile(ks->dir_ + "/start.out") +
                         readFile(ks->dir_ + "/setup.log").substr(0, 4000),
                     ks->dir_);
  }
  rapidjson::Document doc;
  std::string info = readFile(ks->dir_ + "/keystone.json");
  doc.Parse(info.c_str());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("url")) {
    return makeError(ErrorCode::kUnavailable, "keystone.json is missing or broken", ks->dir_);
  }
  ks->url_ = doc["url"].GetString();
  ks->password_ = doc["password"].GetString();
  readMap(doc, "projects", ks->projects_);
  readMap(doc, "users", ks->users_);
  readMap(doc, "user_projects", ks->user_projects_);
  auto http = common::makeHttpClient();
  if (!http) return http.error();
  ks->http_ = std::move(http.value());
  return ks;
}

KeystoneServer::~KeystoneServer() {
  stop();
  if (std::getenv("BANYAN_KEEP_KEYSTONE") == nullptr && !dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

void KeystoneServer::stop() {
  if (!running_) return;
  running_ = false;
  std::string cmd =
      shellQuote(BANYAN_KEYSTONE_SCRIPT) + " stop " + shellQuote(dir_) + " >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) {
    // The script kills by the recorded PID; nothing else to do but say so.
    std::fprintf(stderr, "keystone-server.sh stop failed for %s\n", dir_.c_str());
  }
}

std::string KeystoneServer::projectId(const std::string& name) const {
  auto it = projects_.find(name);
  return it == projects_.end() ? std::string() : it->second;
}

std::string KeystoneServer::userId(const std::string& name) const {
  auto it = users_.find(name);
  return it == users_.end() ? std::string() : it->second;
}

std::string KeystoneServer::projectOf(const std::string& user) const {
  auto it = user_projects_.find(user);
  return it == user_projects_.end() ? std::string() : it->second;
}

common::Result<std::string> KeystoneServer::issue(const std::string& body) {
  auto resp =
      http_->request("POST", url_ + "/v3/auth/tokens?nocatalog",
                     {{"Content-Type", "application/json"}}, body, std::chrono::seconds(60));
  if (!resp) return resp.error();
  if (resp->status != 201) {
    return makeError(ErrorCode::kUnavailable, "Keystone refused the token request: HTTP " +
                                                  std::to_string(resp->status) + " " + resp->body);
  }
  auto token = resp->header("X-Subject-Token");
  if (!token) return makeError(ErrorCode::kUnavailable, "no X-Subject-Token in Keystone's answer");
  return *token;
}

static std::string identity(const std::string& user, const std::string& password) {
  return R"({"methods":["password"],"password":{"user":{"name":")" + jsonEscape(user) +
         R"(","domain":{"id":"default"},"password":")" + jsonEscape(password) + R"("}}})";
}

common::Result<std::string> KeystoneServer::issueToken(const std::string& user,
                                                       const std::string& project) {
  std::string scope = project.empty() ? projectOf(user) : project;
  return issue(R"({"auth":{"identity":)" + identity(user, password_) +
               R"(,"scope":{"project":{"name":")" + jsonEscape(scope) +
               R"(","domain":{"id":"default"}}}}})");
}

common::Result<std::string> KeystoneServer::issueSystemToken(const std::string& user) {
  return issue(R"({"auth":{"identity":)" + identity(user, password_) +
               R"(,"scope":{"system":{"all":true}}}})");
}

common::Result<void> KeystoneServer::revokeToken(const std::string& token) {
  auto admin = issueToken("admin");
  if (!admin) return admin.error();
  auto resp = http_->request("DELETE", url_ + "/v3/auth/tokens",
                             {{"X-Auth-Token", admin.value()}, {"X-Subject-Token", token}}, "",
                             std::chrono::seconds(60));
  if (!resp) return resp.error();
  if (resp->status != 204) {
    return makeError(ErrorCode::kUnavailable,
                     "revocation answered HTTP " + std::to_string(resp->status));
  }
  return {};
}

int KeystoneServer::countRequests(const std::string& needle) const {
  std::ifstream in(dir_ + "/uwsgi.log");
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    if (line.find(needle) != std::string::npos && line.find("msecs") != std::string::npos) ++n;
  }
  return n;
}

}  // namespace banyan::testing
