# Board constants for both build systems, generated from boards.json by
# tools/gen_boards.py: mk/boards.mk (Make) and ports/zephyr/Kconfig.boards
# (Zephyr's Kconfig). After editing boards.json:
#   make -C firmware boards-gen       (rewrite both, commit them)
#   make -C firmware boards-check     (part of make test: regenerating changes nothing)

BOARDS_GENERATED := mk/boards.mk ports/zephyr/Kconfig.boards

.PHONY: boards-gen boards-check
boards-gen:
	python3 tools/gen_boards.py

boards-check:
	@rm -rf $(BUILD)/boards-gen
	@python3 tools/gen_boards.py $(BUILD)/boards-gen
	@set -e; for f in $(BOARDS_GENERATED); do \
		diff -u $$f $(BUILD)/boards-gen/$$f || { echo "boards-check: $$f is stale, run make -C firmware boards-gen"; exit 1; }; done
	@echo "boards-check: $(BOARDS_GENERATED) match boards.json"

TEST_TARGETS += boards-check
