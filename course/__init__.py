"""Course machinery: database selection, notebook setup, quizzes, learner-notebook generation.

None of this is what the lessons teach; it keeps the lessons short and is tested in tests/.
"""
