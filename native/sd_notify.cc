// Node has no AF_UNIX datagram sockets (dgram is UDP only), and systemd's notification socket is one: this is the
// few lines of sd_notify(3) matchd needs, so the daemon can run as Type=notify without libsystemd or a helper process
// (a `systemd-notify` child would be a different PID, which systemd ignores under NotifyAccess=main).
#include "sd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>

#include "errors.h"

namespace matchd {

Napi::Value SdNotifyJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, kInternal, [&]() -> Napi::Value {
    MATCHD_REQUIRE(info.Length() == 2 && info[0].IsString() && info[1].IsString(), kBadInput,
                   "sdNotify expects (socketPath: string, state: string)");
    const std::string socketPath = info[0].As<Napi::String>().Utf8Value();
    const std::string state = info[1].As<Napi::String>().Utf8Value();
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    MATCHD_REQUIRE(socketPath.size() >= 2 && (socketPath[0] == '/' || socketPath[0] == '@'), kBadInput,
                   "NOTIFY_SOCKET must be an absolute path or @name (abstract namespace): " + socketPath);
    MATCHD_REQUIRE(socketPath.size() < sizeof(addr.sun_path), kBadInput, "NOTIFY_SOCKET is too long for a unix socket address");
    std::memcpy(addr.sun_path, socketPath.data(), socketPath.size());
    if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';  // abstract: a leading NUL, no terminator counted
    const socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socketPath.size() + (socketPath[0] == '/' ? 1 : 0));

    const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return Napi::String::New(env, std::string("socket: ") + std::strerror(errno));
    // Small and non-blocking in practice: the manager's socket has room for many such messages.
    const ssize_t sent = sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&addr), len);
    const int err = errno;
    close(fd);
    if (sent < 0) return Napi::String::New(env, std::string("sendto ") + socketPath + ": " + std::strerror(err));
    if (static_cast<size_t>(sent) != state.size()) return Napi::String::New(env, "sendto: short write");
    return env.Null();
  });
}

}  // namespace matchd
