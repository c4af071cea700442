// Certificate checks kept out of the store's write transaction. Reading a reference
// is an HTTP call to Barbican (or file reads); made inside the write it held the SQLite
// write lock, or a PostgreSQL transaction with its row and advisory locks, for as long
// as Barbican took to answer.
#pragma once

#include <functional>

namespace banyan::provider::api {

// Runs fn, a handler's write([&](Txn& t) {...}), so that every Api::checkTlsRefs and
// Api::checkCaAndCrlRefs it reaches is answered from a check made with no transaction
// open: the first time the write reaches a check whose outcome is not known yet, the
// transaction is abandoned (rolled back), the check is made, and fn runs again. fn's
// checks and errors come in the same order as without this (a request that fails
// before its certificate checks, e.g. 404, 403 or 409, fetches nothing), and a reached
// check answers exactly what it answered inline. Only a write whose references keep
// changing between runs (concurrent updates of the same object) falls back to checking
// inline after a few runs. fn must have no effect outside its transaction (as
// Store::write already requires). Checks outside such a call run inline.
void runWithCertChecksOutside(const std::function<void()>& fn);

}  // namespace banyan::provider::api
