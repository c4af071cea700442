// Thin, checked wrappers over the socket calls the proxy and the health checker
// make. Every function reports failure through its return value and errno.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace banyan::dp::net {

// Parses an IPv4 or IPv6 literal (no brackets) and port into `out`.
bool parseAddress(std::string_view address, uint16_t port, sockaddr_storage& out);
socklen_t addressLength(const sockaddr_storage& addr);
uint16_t addressPort(const sockaddr_storage& addr);
// "192.0.2.1:80" or "[2001:db8::1]:80".
std::string formatAddressPort(const sockaddr_storage& addr);
bool sameAddress(const sockaddr_storage& a, const sockaddr_storage& b);  // address and port

// A non-blocking listening TCP socket with SO_REUSEADDR, SO_REUSEPORT and IP_FREEBIND
// (IPV6_V6ONLY on IPv6 so IPv4 and IPv6 listeners on one port can coexist).
// Returns the fd or -1.
int listenTcp(const sockaddr_storage& addr, int backlog);
// A non-blocking UDP socket bound to addr with SO_REUSEPORT (one per worker:
// the kernel spreads clients over them by 4-tuple), SO_REUSEADDR, IP_FREEBIND
// and IPV6_V6ONLY as listenTcp. On a wildcard address it also asks for the
// destination address of each datagram (IP_PKTINFO / IPV6_RECVPKTINFO) so
// replies leave from the address the client sent to. Returns the fd or -1.
int bindUdp(const sockaddr_storage& addr);
// A non-blocking UDP socket connected to addr (a flow toward a member: only
// that member's datagrams reach it). Returns the fd or -1.
int connectUdp(const sockaddr_storage& addr);
// Starts a non-blocking connect; returns the fd (connect may still be in
// progress: wait for EPOLLOUT, then check connectError) or -1.
int connectTcp(const sockaddr_storage& addr);
// SO_ERROR of a socket whose non-blocking connect finished.
int connectError(int fd);
void setNoDelay(int fd);
// Closes with RST instead of FIN (SO_LINGER 0).
void closeWithReset(int fd);

}  // namespace banyan::dp::net
