"""Architectures cnn-bench writes itself: LeNet-5 and the chapter's code examples."""
