// Fuzz target: the netns drivers' parsers of text they did not write in this run:
// their state files (left by an earlier provider, possibly damaged), network specs
// and CIDRs from provider.conf, and requested VIP addresses from API users. The first
// byte picks the parser; each must reject bad input with an error, never crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "drivers/address.h"
#include "drivers/netns_options.h"
#include "drivers/netns_state.h"

using namespace banyan::provider::drivers;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 4) {
    case 0: {
      auto state = computeStateFromJson(text);
      // What parses must survive a round trip unchanged.
      if (state.ok()) {
        auto again = computeStateFromJson(toJson(state.value()));
        if (!again.ok() || toJson(again.value()) != toJson(state.value())) __builtin_trap();
      }
      break;
    }
    case 1: {
      auto state = networkStateFromJson(text);
      if (state.ok()) {
        auto again = networkStateFromJson(toJson(state.value()));
        if (!again.ok() || toJson(again.value()) != toJson(state.value())) __builtin_trap();
      }
      break;
    }
    case 2: {
      auto net = parseNetworkSpec(text, "bny-vip0");
      if (net.ok() && !net.value().cidr.contains(net.value().pool.start)) __builtin_trap();
      break;
    }
    default: {
      auto cidr = Cidr::parse(text);
      if (cidr.ok() && !cidr.value().contains(cidr.value().last())) __builtin_trap();
      if (auto address = IpAddress::parse(text);
          address && !IpAddress::parse(address->toString())) {
        __builtin_trap();
      }
      break;
    }
  }
  return 0;
}
