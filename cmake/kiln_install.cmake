# kiln_install.cmake - `cmake --install` rules: kiln, libkiln, libkiln_rt*, headers, pkg-config
# files and the CMake package (find_package(kiln)); included by the top-level CMakeLists.txt.
include(CMakePackageConfigHelpers)

set(KILN_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/kiln)
set(KILN_PC_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# The runtime: everything an AOT-compiled model needs, and all a runtime-only build has.
set(kiln_rt_targets kiln_rt kiln_rt_shared)
if(TARGET kiln_rt_main)
  list(APPEND kiln_rt_targets kiln_rt_main)
endif()
install(TARGETS ${kiln_rt_targets} EXPORT kilnRuntimeTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} NAMELINK_COMPONENT Development)
install(EXPORT kilnRuntimeTargets NAMESPACE kiln:: DESTINATION ${KILN_CMAKE_DIR})
# Headers go to <prefix>/include/kiln/; both that folder and <prefix>/include are on the
# include path of the exported targets and the .pc files, so <kiln_aot.h> and <kiln/kiln_aot.h>
# both work.
set(kiln_headers ${CMAKE_SOURCE_DIR}/include/kiln_aot.h)

# The engine: the kiln tool and libkiln.so (absent from a KILN_RUNTIME_ONLY build).
if(TARGET kiln)
  set_target_properties(kiln PROPERTIES EXPORT_NAME kiln_tool)
  install(TARGETS kiln kiln_lib EXPORT kilnTargets
          RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} NAMELINK_COMPONENT Development)
  install(EXPORT kilnTargets NAMESPACE kiln:: DESTINATION ${KILN_CMAKE_DIR})
  list(APPEND kiln_headers ${CMAKE_SOURCE_DIR}/include/kiln.h)
endif()
install(FILES ${kiln_headers} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/kiln)

foreach(license LICENSE LICENSE.txt LICENSE.md COPYING)
  if(EXISTS ${CMAKE_SOURCE_DIR}/${license})
    install(FILES ${CMAKE_SOURCE_DIR}/${license} DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/kiln)
  endif()
endforeach()

# pkg-config: prefix is derived from the .pc file's own place (${pcfiledir}), so the files stay
# right under `cmake --install --prefix DIR` and in a relocated tree.
file(RELATIVE_PATH KILN_PC_TO_PREFIX /kiln/${KILN_PC_DIR} /kiln)
string(REGEX REPLACE "/$" "" KILN_PC_TO_PREFIX "${KILN_PC_TO_PREFIX}")
string(REPLACE ";" " " KILN_OPENMP_FLAGS "${OpenMP_C_FLAGS}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/kiln_rt.pc.in ${CMAKE_BINARY_DIR}/pkgconfig/kiln_rt.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/pkgconfig/kiln_rt.pc DESTINATION ${KILN_PC_DIR})
if(TARGET kiln_lib)
  configure_file(${CMAKE_CURRENT_LIST_DIR}/kiln.pc.in ${CMAKE_BINARY_DIR}/pkgconfig/kiln.pc @ONLY)
  install(FILES ${CMAKE_BINARY_DIR}/pkgconfig/kiln.pc DESTINATION ${KILN_PC_DIR})
endif()

# CMake package: kilnConfig.cmake finds OpenMP and includes the exported targets.
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/kilnConfig.cmake.in
    ${CMAKE_BINARY_DIR}/cmake/kilnConfig.cmake INSTALL_DESTINATION ${KILN_CMAKE_DIR}
    PATH_VARS CMAKE_INSTALL_BINDIR)
# 0.x: a minor version may break the API, so only the same minor version is compatible.
write_basic_package_version_file(${CMAKE_BINARY_DIR}/cmake/kilnConfigVersion.cmake
    VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/cmake/kilnConfig.cmake
        ${CMAKE_BINARY_DIR}/cmake/kilnConfigVersion.cmake DESTINATION ${KILN_CMAKE_DIR})
