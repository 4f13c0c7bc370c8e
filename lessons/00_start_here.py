# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 00 · Start here
# (pilot; to be written)

# %%
from course.notebook import setup, run_tests
from course.quiz import answer

nb = setup("00")
nb

# %%
# %%ipytest
import pytest

def test_one_plus_one():
    assert 1 + 1 == 2

# %%
def test_broken():
    assert 1 + 1 == 3

run_tests("test_broken", expect="failed")

# %% [markdown]
# **Exercise.** Write a test that checks 2 * 3.

# %%
# %%ipytest

def test_multiply():
    # BEGIN SOLUTION
    assert 2 * 3 == 6
    # END SOLUTION

# %% [markdown]
# **Quiz 00.1.** What is 1 + 1?
# - **a)** 1
# - **b)** 2

# %% tags=["quiz-answer"]
answer("00.1", "b")
