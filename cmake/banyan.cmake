# Helpers shared by every component's CMakeLists.txt.

# banyan_dp_library(NAME SOURCES... [DEPS ...]): a dataplane module library.
# The dataplane is built without exceptions (see STYLE.md, "Errors").
function(banyan_dp_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/dataplane/src)
  target_compile_options(${name} PRIVATE -fno-exceptions)
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
endfunction()

# banyan_library(NAME SOURCES... [DEPS ...]): a provider or agent module library. These
# components may use exceptions inside a module (cpprestsdk, RapidJSON wrappers) but
# return Result<T> across module boundaries (STYLE.md, "Errors"). The include root is
# the component's src/ folder, so modules include each other as "store/store.h".
function(banyan_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${BANYAN_COMPONENT_SRC})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
endfunction()

# banyan_add_module_dirs(DIR): add_subdirectory() every folder of DIR that has a
# CMakeLists.txt, so a new module needs no edit of its parent.
function(banyan_add_module_dirs dir)
  file(GLOB _dirs LIST_DIRECTORIES true ${dir}/*)
  foreach(_d ${_dirs})
    if(IS_DIRECTORY ${_d} AND EXISTS ${_d}/CMakeLists.txt)
      add_subdirectory(${_d})
    endif()
  endforeach()
endfunction()

# banyan_test(NAME SOURCES... [DEPS ...] [LABELS ...] [RESOURCE_LOCK lock]): a
# GoogleTest binary, each test case registered with CTest. RESOURCE_LOCK keeps its cases
# from running beside other tests holding the same lock (e.g. host_bridges: tests that
# put documentation-range subnets on host bridges).
function(banyan_test name)
  cmake_parse_arguments(ARG "" "RESOURCE_LOCK" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main GTest::gmock pthread)
  set(_lock)
  if(ARG_RESOURCE_LOCK)
    set(_lock PROPERTIES RESOURCE_LOCK ${ARG_RESOURCE_LOCK})
  endif()
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 30 ${_lock})
  # Labels are set after discovery from the list it leaves in <name>_TESTS: CMake
  # 3.25's discovery script splits a list-valued LABELS given through PROPERTIES into
  # property/value pairs however it is escaped, so only the first label would stick.
  if(ARG_LABELS)
    set(_labels_file "${CMAKE_CURRENT_BINARY_DIR}/${name}_labels.cmake")
    file(WRITE "${_labels_file}"
         "if(DEFINED ${name}_TESTS)\n"
         "  set_tests_properties(\${${name}_TESTS} PROPERTIES LABELS \"${ARG_LABELS}\")\n"
         "endif()\n")
    set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${_labels_file}")
  endif()
endfunction()

# banyan_fuzz_target(NAME SOURCE CORPUS_DIR [DEPS ...]): with BANYAN_FUZZ a libFuzzer
# binary; otherwise the same entry point linked to a driver that replays the seed
# corpus, registered as a test so every CI run exercises the target.
function(banyan_fuzz_target name source corpus)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  if(BANYAN_FUZZ)
    add_executable(${name} ${source})
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  else()
    add_executable(${name} ${source} ${PROJECT_SOURCE_DIR}/dataplane/fuzz/replay_main.cc)
    add_test(NAME ${name}_corpus COMMAND ${name} ${corpus})
    set_tests_properties(${name}_corpus PROPERTIES LABELS fuzz)
  endif()
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
endfunction()
