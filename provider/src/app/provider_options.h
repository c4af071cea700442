// Every option banyan-provider reads, declared once (STYLE.md "Configuration"), with
// Octavia's defaults, and the conversion of the loaded values into the typed structs
// the parts take.
#pragma once

#include <string>

#include "api/api_service.h"
#include "banyan/common/options.h"
#include "banyan/common/result.h"

namespace banyan::provider::app {

void declareProviderOptions(common::OptionSet& options);

// [api_settings], [quotas], [haproxy_amphora], [networking] -> ApiOptions. Errors name the
// group and option.
common::Result<api::ApiOptions> apiOptionsFrom(const common::OptionSet& options);

// [database] connection, defaulting to a SQLite file under the state directory.
std::string databaseUrl(const common::OptionSet& options);

}  // namespace banyan::provider::app
