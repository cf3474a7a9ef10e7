#include "bindings/pybind.hpp"
#include "runtime/cpu_profile.hpp"
#include "runtime/dispatch.hpp"

namespace rs {

void bind_cpu_profiles(py::module_& m) {
  py::class_<GemmTuning>(m, "GemmTuning", "Cache blocking and prefetch of the blocked GEMM.")
      .def_readonly("kc", &GemmTuning::kc)
      .def_readonly("mc_panels", &GemmTuning::mc_panels)
      .def_readonly("nc", &GemmTuning::nc)
      .def_readonly("prefetch_distance", &GemmTuning::prefetch_distance)
      .def_readonly("blocks_per_pass", &GemmTuning::blocks_per_pass);

  py::class_<CpuProfile>(m, "CpuProfile", "What to run on one micro-architecture.")
      .def_property_readonly("name", [](const CpuProfile& p) { return std::string(p.name); })
      .def_property_readonly("description",
                             [](const CpuProfile& p) { return std::string(p.description); })
      .def_property_readonly("simd_target",
                             [](const CpuProfile& p) -> std::optional<std::string> {
                               if (!p.simd_target)
                                 return std::nullopt;  // the best target the CPU can run
                               return std::string(p.simd_target);
                             })
      .def_property_readonly("gemm_tuning", [](const CpuProfile& p) -> std::optional<GemmTuning> {
        if (!p.has_gemm_tuning) return std::nullopt;  // the target's defaults
        return p.gemm_tuning;
      });

  py::class_<CpuIdentity>(m, "CpuIdentity", "The CPU as CPUID reports it.")
      .def_readonly("vendor", &CpuIdentity::vendor)
      .def_readonly("family", &CpuIdentity::family)
      .def_readonly("model", &CpuIdentity::model)
      .def_readonly("flags", &CpuIdentity::flags)
      .def_readonly("l2_kib", &CpuIdentity::l2_kib, "Each core's L2 in KiB; 0 when unknown.");

  m.def("cpu_profiles", &cpu_profiles, "Every CPU profile, 'generic' first.");
  m.def("detect_cpu", &detect_cpu, "The CPU this process runs on.");
  m.def(
      "profile_for",
      [](const std::string& vendor, int family, int model, const std::vector<std::string>& flags,
         int l2_kib) {
        return std::string(profile_for(CpuIdentity{vendor, family, model, flags, l2_kib}).name);
      },
      py::arg("vendor"), py::arg("family"), py::arg("model"), py::arg("flags"),
      py::arg("l2_kib") = 0,
      "The name of the profile for a CPU with this CPUID vendor, family, model, flags and "
      "L2 per core in KiB (0: unknown).");
  m.def("select_cpu_profile", &select_cpu_profile, py::arg("name"),
        "Use the named CPU profile: its SIMD target and GEMM tuning.");
  m.def("selected_cpu_profile", &selected_cpu_profile, "The CPU profile in use.");
  m.def("detected_cpu_profile", &detected_cpu_profile, "The CPU profile detected at load.");
  m.def("gemm_tuning_in_use", &gemm_tuning_in_use, "The GEMM tuning of the target in use.");
  m.def(
      "set_gemm_tuning",
      [](std::int64_t kc, std::int64_t mc_panels, std::int64_t nc, std::int64_t prefetch_distance,
         std::int64_t blocks_per_pass) {
        set_gemm_tuning(GemmTuning{kc, mc_panels, nc, prefetch_distance, blocks_per_pass});
      },
      py::arg("kc"), py::arg("mc_panels"), py::arg("nc"), py::arg("prefetch_distance"),
      py::arg("blocks_per_pass") = 1,
      "Replace the GEMM tuning of the target in use until the next target or profile is "
      "selected (benchmarks, tests).");
}

}  // namespace rs
