// Errors raised by the native core. The core never knows about Node: the binding
// turns an edgeopt::Error into a JS error carrying the same stable code.
#pragma once
#include <stdexcept>
#include <string>

namespace edgeopt {

class Error : public std::runtime_error {
 public:
  Error(std::string code, const std::string& message) : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

}  // namespace edgeopt
