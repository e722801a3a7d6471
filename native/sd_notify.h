// systemd's readiness protocol (sd_notify(3)) without libsystemd: one datagram to the socket in $NOTIFY_SOCKET.
#pragma once

#include <napi.h>

namespace matchd {

/**
 * `sdNotify(socketPath, state)`: send `state` ("READY=1\nSTATUS=...") as one datagram to the AF_UNIX socket at
 * `socketPath` (a path, or `@name` for the abstract namespace). Returns null when sent, else the errno's text.
 */
Napi::Value SdNotifyJs(const Napi::CallbackInfo& info);

}  // namespace matchd
