# node-gyp build of the addon. Built against Node's own headers (npm's nodedir=/usr here).
# C++ exceptions are on: node-addon-api turns a thrown Napi::Error (KvmError included) or any
# std::exception into a JS exception when the native call returns.
{
  "targets": [
    {
      "target_name": "kvm_native",
      "sources": [
        "src/addon.cc",
        "src/constants.cc",
        "src/errors.cc",
        "src/convert.cc",
        "src/kvm.cc",
        "src/vm.cc",
        "src/vcpu.cc",
        "src/kick.cc",
        "src/guest_ram.cc",
        "src/fd.cc",
        "src/fd_watch.cc",
        "src/tap.cc",
        "src/io.cc",
        "src/io_uring.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_CPP_EXCEPTIONS_ALL", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "conditions": [
        ["OS!='linux'", { "type": "none" }]
      ]
    }
  ]
}
