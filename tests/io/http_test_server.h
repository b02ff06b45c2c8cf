// A tiny HTTP/1.0 server for the download tests: one thread, a socket on 127.0.0.1 with an
// ephemeral port, serving fixed bodies by path and 404 for anything else. It stops when
// destroyed, and by itself after a bounded time, so a stuck test can never hang ctest.
#pragma once
#include <atomic>
#include <map>
#include <string>
#include <thread>

namespace ag::io::testing {

class HttpTestServer {
 public:
  // `files` maps a request path such as "/train-images-idx3-ubyte.gz" to the body served.
  explicit HttpTestServer(std::map<std::string, std::string> files, int lifetime_s = 60);
  ~HttpTestServer();
  HttpTestServer(const HttpTestServer&) = delete;
  HttpTestServer& operator=(const HttpTestServer&) = delete;

  std::string base_url() const;  // "http://127.0.0.1:<port>/"
  int requests() const { return requests_; }

 private:
  void serve(int lifetime_s);
  void answer(int client);

  std::map<std::string, std::string> files_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

// A loopback port with nothing listening on it: connecting is refused at once.
int closed_loopback_port();

}  // namespace ag::io::testing
