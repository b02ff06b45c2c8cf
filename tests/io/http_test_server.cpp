// The download tests' loopback HTTP/1.0 server; see http_test_server.h.
#include "http_test_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <stdexcept>

namespace ag::io::testing {
namespace {

// A socket bound to 127.0.0.1 on a port the kernel picks; returns the fd and sets *port.
int bind_loopback(int* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("test server: socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error(std::string("test server: bind failed: ") + std::strerror(errno));
  }
  *port = ntohs(addr.sin_port);
  return fd;
}

void send_all(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return;  // the client went away; nothing to do about it
    done += size_t(n);
  }
}

}  // namespace

HttpTestServer::HttpTestServer(std::map<std::string, std::string> files, int lifetime_s) : files_(std::move(files)) {
  listen_fd_ = bind_loopback(&port_);
  if (::listen(listen_fd_, 16) != 0) {
    ::close(listen_fd_);
    throw std::runtime_error("test server: listen failed");
  }
  thread_ = std::thread([this, lifetime_s] { serve(lifetime_s); });
}

HttpTestServer::~HttpTestServer() {
  stop_ = true;
  thread_.join();
  ::close(listen_fd_);
}

std::string HttpTestServer::base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }

void HttpTestServer::serve(int lifetime_s) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(lifetime_s);
  while (!stop_ && std::chrono::steady_clock::now() < deadline) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    timeval timeout{2, 0};  // a client that never finishes its request cannot stall us
    ::setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    answer(client);
    ::close(client);
  }
}

void HttpTestServer::answer(int client) {
  std::string request;
  char chunk[1024];
  while (request.find("\r\n\r\n") == std::string::npos && request.size() < 16384) {
    ssize_t n = ::recv(client, chunk, sizeof chunk, 0);
    if (n <= 0) return;
    request.append(chunk, size_t(n));
  }
  ++requests_;
  // "GET /path HTTP/1.1": the path is the second word.
  size_t start = request.find(' ');
  size_t end = start == std::string::npos ? start : request.find(' ', start + 1);
  std::string path = end == std::string::npos ? "" : request.substr(start + 1, end - start - 1);
  auto file = files_.find(path);
  if (request.rfind("GET ", 0) != 0 || file == files_.end()) {
    send_all(client, "HTTP/1.0 404 Not Found\r\nContent-Length: 10\r\nConnection: close\r\n\r\nnot found\n");
    return;
  }
  send_all(client, "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: " +
                       std::to_string(file->second.size()) + "\r\nConnection: close\r\n\r\n" + file->second);
}

int closed_loopback_port() {
  int port = 0;
  int fd = bind_loopback(&port);
  ::close(fd);  // bound but never listening, then released: connections are refused
  return port;
}

}  // namespace ag::io::testing
